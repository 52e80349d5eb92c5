//! Content-defined chunking of a byte stream (FastCDC 2020, via the `fastcdc` crate's cut-point
//! function), with a reusable buffer so a backup allocates nothing per chunk.
//!
//! Cut points depend only on the bytes near them, so inserting bytes in a file shifts the
//! chunks around the insertion and leaves the others (and their ids) unchanged.
//!
//! ```text
//! loop:
//!   refill the buffer so that at least max_size bytes follow `start` (or EOF is reached)
//!   if nothing is left: done
//!   cut = fastcdc::cut(buffer[start..end])     // min <= cut <= max, or the rest at EOF
//!   yield buffer[start..start+cut]; start += cut
//! ```

use crate::config::ChunkerParams;
use fastcdc::v2020;
use std::io::{self, Read};

/// Splits a reader into content-defined chunks.
#[derive(Debug)]
pub struct Chunker<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, params: ChunkerParams) -> Chunker<R> {
        Self::with_buffer(reader, params, Vec::new())
    }

    /// A chunker reusing `buf` as its buffer (see [`Chunker::into_buffer`]).
    pub fn with_buffer(reader: R, params: ChunkerParams, mut buf: Vec<u8>) -> Chunker<R> {
        let cap = params.max_size as usize * 2;
        buf.resize(cap, 0);
        let bits = v2020::logarithm2(params.avg_size);
        // Normalization level 1, as fastcdc's default.
        let mask_s = v2020::MASKS[(bits + 1) as usize];
        let mask_l = v2020::MASKS[(bits - 1) as usize];
        Chunker {
            reader,
            buf,
            start: 0,
            end: 0,
            eof: false,
            params,
            mask_s,
            mask_l,
        }
    }

    /// Gives the buffer back for reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    fn fill(&mut self) -> io::Result<()> {
        let max = self.params.max_size as usize;
        if self.eof || self.end - self.start >= max {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        self.fill()?;
        if self.start == self.end {
            return Ok(None);
        }
        let data = &self.buf[self.start..self.end];
        let (_, len) = v2020::cut(
            data,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        let len = len.max(1).min(data.len());
        let chunk_start = self.start;
        self.start += len;
        Ok(Some(&self.buf[chunk_start..chunk_start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
        }
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn chunks(data: &[u8], p: ChunkerParams) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(data, p);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch.to_vec());
        }
        out
    }

    #[test]
    fn sizes_respect_bounds() {
        let data = pseudo_random(300_000, 7);
        let cs = chunks(&data, small());
        for c in &cs[..cs.len() - 1] {
            assert!(
                c.len() >= 256 && c.len() <= 4096,
                "chunk of {} bytes",
                c.len()
            );
        }
        assert_eq!(cs.concat(), data);
    }

    #[test]
    fn boundaries_are_stable_when_bytes_are_inserted_ahead() {
        let data = pseudo_random(200_000, 42);
        let mut edited = data[..50_000].to_vec();
        edited.extend_from_slice(b"twenty inserted bytes");
        edited.extend_from_slice(&data[50_000..]);
        let before: std::collections::HashSet<_> = chunks(&data, small()).into_iter().collect();
        let after = chunks(&edited, small());
        let shared = after.iter().filter(|c| before.contains(*c)).count();
        // Only the chunk(s) around the insertion may differ.
        assert!(
            shared + 3 >= after.len(),
            "only {shared} of {} chunks survived an insertion",
            after.len()
        );
    }

    #[test]
    fn empty_input_gives_no_chunk() {
        assert!(chunks(&[], small()).is_empty());
    }

    proptest! {
        #[test]
        fn chunk_then_join_is_identity(len in 0usize..40_000, seed in any::<u64>()) {
            let data = pseudo_random(len, seed);
            let cs = chunks(&data, small());
            prop_assert_eq!(cs.concat(), data);
        }
    }
}
