//! The repository's index: the files that record which blob is in which pack
//! ([`file`]), and the compact in-memory table built from them ([`table`]).

mod file;
mod paged;
mod table;

pub use file::{decode, decode_trees, encode, IndexedPack};
pub use table::{Index, IndexBuilder};
