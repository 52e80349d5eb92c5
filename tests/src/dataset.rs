//! A department's service folder, generated deterministically from a seed: the example and
//! benchmark data of this repository (`scripts/try.sh`, `bench/*.sh`, `sk-dataset`).
//!
//! Two profiles:
//! - **department** (`create`, scale 1.0 ≈ 1.2 GiB, ≈ 16,000 files): client folders by year
//!   and kind (`clients/Boulangerie Lefèvre/2025/devis/…`) full of office documents, PDFs and
//!   photos (incompressible bodies behind the magic bytes their extension promises: a `.docx`
//!   starts as a zip, a `.pdf` with `%PDF-` and ends with `%%EOF`, a `.jpg` is JFIF),
//!   accounting and HR spreadsheets and notes (compressible French text, CSV with `;`), personal
//!   mailboxes (`courriel/*.mbox`), one large `.pst` mailbox and one disk image, a few empty files
//!   and folders, a symlink (on Unix), names with spaces and accents.
//! - **small files** (`create_small`): N files of 1–8 KiB in N/100 folders, the shape of years
//!   of scans, mail exports and CSV extracts (one million files: ≈ 4.5 GiB, 10,000 folders).
//!
//! `edit` applies one working day of edits to either: ~1 % of the documents rewritten, ~1 % of
//! the text files edited in the middle, 1 MiB inserted in the middle of the `.pst`, 4 MiB
//! appended to the disk image, 150 new files, 80 deleted, 80 touched (new mtime, same bytes).
//!
//! Same seed, same bytes: the PRNG is xoshiro256** seeded by SplitMix64, written out here
//! (a dozen lines) so the data can never change with a dependency's version.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: fast, and its output is fixed
/// by its definition.
#[derive(Debug, Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`; the multiply-shift bias is below 2^-40 for our n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// `k` distinct indices of `0..n`, in the order drawn (partial Fisher–Yates).
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + self.below((n - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    }
}

const WORDS: &[&str] = &[
    "devis",
    "facture",
    "client",
    "commande",
    "livraison",
    "tarif",
    "remise",
    "produit",
    "service",
    "commercial",
    "réunion",
    "proposition",
    "contrat",
    "avenant",
    "signature",
    "budget",
    "trimestre",
    "prévision",
    "relance",
    "paiement",
    "échéance",
    "fournisseur",
    "stock",
    "référence",
    "quantité",
    "montant",
    "total",
    "taxe",
    "adresse",
    "contact",
    "téléphone",
    "courriel",
    "projet",
    "planning",
    "tâche",
    "responsable",
    "validation",
    "version",
    "brouillon",
    "final",
    "annexe",
    "rapport",
    "note",
    "congés",
    "entretien",
];
const CLIENTS: &[&str] = &[
    "Dupont SA",
    "Martin & Fils",
    "Boulangerie Lefèvre",
    "Garage Moreau",
    "Clinique Saint-Éloi",
    "Mairie de Vernon",
    "Transports Roux",
    "Atelier Faure",
    "Cabinet Girard",
    "SCI Bonnet",
    "Librairie Mercier",
    "Pharmacie Blanc",
];
const KINDS: &[&str] = &[
    "devis",
    "factures",
    "contrats",
    "correspondance",
    "photos chantier",
];
const PEOPLE: &[&str] = &[
    "Amélie Durand",
    "Benoît Lambert",
    "Céline Roussel",
    "Jérôme Petit",
    "Hélène Garnier",
    "François Chevalier",
];
/// Document extensions: content is incompressible behind the type's magic bytes.
pub const DOC_EXT: &[&str] = &["docx", "xlsx", "pdf", "pptx", "odt", "jpg"];
/// Text extensions: compressible content.
pub const TXT_EXT: &[&str] = &["csv", "txt", "md", "log"];

/// What a generation or an edit round did (printed as JSON by `sk-dataset`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub folders: u64,
    pub bytes: u64,
    pub overwritten: u64,
    pub edited: u64,
    pub added: u64,
    pub deleted: u64,
    pub touched: u64,
}

/// Writes files, creating each parent folder once.
struct Writer {
    made: HashSet<PathBuf>,
    summary: Summary,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            made: HashSet::new(),
            summary: Summary::default(),
        }
    }

    fn dir(&mut self, dir: &Path) -> io::Result<()> {
        if !self.made.contains(dir) {
            if !dir.exists() {
                fs::create_dir_all(dir)?;
                self.summary.folders += 1;
            }
            self.made.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            self.dir(parent)?;
        }
        fs::write(path, data).map_err(|e| with_path(e, path))?;
        self.summary.files += 1;
        self.summary.bytes += data.len() as u64;
        Ok(())
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Log-normal around 40 KiB, clipped to 4 KiB ..= 8 MiB: the sizes of office documents.
fn doc_size(rng: &mut Rng) -> usize {
    let s = ((40.0 * 1024.0f64).ln() + 1.2 * rng.gauss()).exp() as usize;
    s.clamp(4096, 8 << 20)
}

/// A document of `size` bytes whose first and last bytes are what its extension promises,
/// with an incompressible body (office formats are compressed containers).
pub fn document(rng: &mut Rng, ext: &str, size: usize) -> Vec<u8> {
    let (head, tail): (&[u8], &[u8]) = match ext {
        "docx" | "xlsx" | "pptx" => (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
            b"PK\x05\x06",
        ),
        "odt" => (
            b"PK\x03\x04\x14\x00\x00\x08\x00\x00mimetypeapplication/vnd.oasis.opendocument.text",
            b"PK\x05\x06",
        ),
        "pdf" => (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"\n%%EOF\n"),
        "jpg" => (
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
            b"\xff\xd9",
        ),
        _ => (b"", b""),
    };
    let size = size.max(head.len() + tail.len());
    let mut v = vec![0u8; size];
    rng.fill(&mut v);
    v[..head.len()].copy_from_slice(head);
    v[size - tail.len()..].copy_from_slice(tail);
    v
}

/// About `n` bytes of French office text: CSV rows for `csv`, sentences otherwise.
pub fn text(rng: &mut Rng, ext: &str, n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n + 128);
    if ext == "csv" {
        out.push_str("date;client;référence;désignation;quantité;montant HT;TVA\n");
    }
    while out.len() < n {
        if ext == "csv" {
            let client = *rng.pick(CLIENTS);
            let (m, d) = (rng.range(1, 12), rng.range(1, 28));
            let y = rng.range(2022, 2026);
            let r = rng.range(1, 99_999);
            let w = *rng.pick(WORDS);
            let q = rng.range(1, 40);
            let a = rng.range(100, 999_999);
            out.push_str(&format!(
                "{y}-{m:02}-{d:02};{client};REF-{r:05};{w};{q};{},{:02};20\n",
                a / 100,
                a % 100
            ));
        } else {
            let words = rng.range(4, 14);
            for i in 0..words {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(rng.pick::<&str>(WORDS));
            }
            out.push_str(&format!(" ({}).\n", rng.range(1, 99_999)));
        }
    }
    let mut b = out.into_bytes();
    // Cut on a character boundary.
    let mut end = n.min(b.len());
    while end < b.len() && (b[end] & 0xC0) == 0x80 {
        end += 1;
    }
    b.truncate(end);
    b
}

fn mbox(rng: &mut Rng, owner: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4096);
    let mut i = 0u64;
    while out.len() < size {
        i += 1;
        let from = *rng.pick(PEOPLE);
        let n = rng.range(300, 6000) as usize;
        let body = text(rng, "txt", n);
        out.extend_from_slice(
            format!(
                "From {}@example.fr Mon Mar {:2} 09:{:02}:00 2026\nFrom: {from}\nTo: {owner}\nSubject: {} n°{i}\n\n",
                from.split(' ').next().unwrap_or("x").to_lowercase(),
                rng.range(1, 28),
                rng.range(0, 59),
                rng.pick(WORDS),
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\n\n");
    }
    out.truncate(size);
    out
}

/// Streams `size` bytes to `path`, one MiB at a time, from `block(i, buf)`.
fn big_file(path: &Path, size: u64, mut block: impl FnMut(u64, &mut Vec<u8>)) -> io::Result<()> {
    let mut f = io::BufWriter::new(fs::File::create(path).map_err(|e| with_path(e, path))?);
    let mut written = 0u64;
    let mut i = 0u64;
    let mut buf = Vec::new();
    while written < size {
        let n = (size - written).min(MIB) as usize;
        buf.clear();
        block(i, &mut buf);
        buf.resize(n, 0);
        f.write_all(&buf)?;
        written += n as u64;
        i += 1;
    }
    f.flush()
}

fn refuse_nonempty(root: &Path) -> io::Result<()> {
    if root.exists() && fs::read_dir(root)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not empty: choose an empty or new folder",
                root.display()
            ),
        ));
    }
    fs::create_dir_all(root)
}

/// Creates the department's folder at `root` (which must be empty or absent).
pub fn create(root: &Path, scale: f64, seed: u64) -> io::Result<Summary> {
    refuse_nonempty(root)?;
    let mut rng = Rng::new(seed);
    let mut w = Writer::new();
    w.made.insert(root.to_path_buf());
    let ndocs = (9000.0 * scale) as usize;
    let ntxt = (7000.0 * scale) as usize;
    for i in 0..ndocs {
        let client = *rng.pick(CLIENTS);
        let year = rng.range(2022, 2026);
        let kind = *rng.pick(KINDS);
        let ext = if kind == "photos chantier" {
            "jpg"
        } else {
            *rng.pick(DOC_EXT)
        };
        let name = format!("{}-{i:05}.{ext}", rng.pick(WORDS));
        let size = doc_size(&mut rng);
        let data = document(&mut rng, ext, size);
        w.file(
            &root
                .join("clients")
                .join(client)
                .join(year.to_string())
                .join(kind)
                .join(name),
            &data,
        )?;
    }
    for i in 0..ntxt {
        let top = *rng.pick(&["compta", "rh", "commun"]);
        let sub = *rng.pick(&["2024", "2025", "2026", "modèles", "procédures", "exports"]);
        let ext = *rng.pick(TXT_EXT);
        let name = format!("{}_{i:05}.{ext}", rng.pick(WORDS));
        let n = rng.range(1024, 64 * 1024) as usize;
        let data = text(&mut rng, ext, n);
        w.file(&root.join(top).join(sub).join(name), &data)?;
    }
    for person in PEOPLE {
        let n = ((rng.range(256, 2048) as f64 * scale) as usize * 1024).max(16 * 1024);
        let data = mbox(&mut rng, person, n);
        w.file(&root.join("courriel").join(format!("{person}.mbox")), &data)?;
    }
    let archives = root.join("archives");
    w.dir(&archives)?;
    let pst = (128.0 * scale * MIB as f64) as u64;
    let img = (96.0 * scale * MIB as f64) as u64;
    // Half text, half incompressible, by MiB blocks.
    big_file(&archives.join("mailbox.pst"), pst, |i, buf| {
        if i % 2 == 0 {
            buf.extend_from_slice(&text(&mut rng, "txt", MIB as usize));
        } else {
            buf.extend_from_slice(&rng.bytes(MIB as usize));
        }
    })?;
    // Mostly zeros with random extents of 4 MiB.
    let mut extent_random = false;
    big_file(&archives.join("poste-adjoint.img"), img, |i, buf| {
        if i % 4 == 0 {
            extent_random = rng.unit() < 0.3;
        }
        if extent_random {
            buf.extend_from_slice(&rng.bytes(MIB as usize));
        }
    })?;
    w.summary.files += 2;
    w.summary.bytes += pst + img;
    for i in 0..5 {
        w.file(&root.join("commun/vide").join(format!("vide-{i}.txt")), b"")?;
    }
    for d in [
        "commun/à classer",
        "compta/2027",
        "rh/entretiens annuels/vide",
    ] {
        w.dir(&root.join(d))?;
    }
    // (Windows lets only administrators make symbolic links: the folder has none there.)
    #[cfg(unix)]
    std::os::unix::fs::symlink("../compta", root.join("commun/raccourci compta"))?;
    Ok(w.summary)
}

/// Creates `files` small files (1–8 KiB; 60 % CSV and text, 40 % documents) in `files / 100`
/// folders grouped by hundreds under `root` (which must be empty or absent).
pub fn create_small(root: &Path, files: u64, seed: u64) -> io::Result<Summary> {
    refuse_nonempty(root)?;
    let mut rng = Rng::new(seed);
    let mut w = Writer::new();
    w.made.insert(root.to_path_buf());
    let folders = files.div_ceil(100).max(1);
    for i in 0..files {
        let f = i % folders;
        let dir = root.join(format!("année {:03}", f / 100)).join(format!(
            "dossier-{f:05} {}",
            CLIENTS[(f % CLIENTS.len() as u64) as usize]
        ));
        let size = rng.range(1024, 8192) as usize;
        let (ext, data) = if rng.below(10) < 6 {
            let ext = *rng.pick(TXT_EXT);
            (ext, text(&mut rng, ext, size))
        } else {
            let ext = *rng.pick(DOC_EXT);
            (ext, document(&mut rng, ext, size))
        };
        w.file(&dir.join(format!("pièce-{i:07}.{ext}")), &data)?;
    }
    Ok(w.summary)
}

/// Every regular file below `root` (not following symlinks), sorted by path.
pub fn all_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).map_err(|e| with_path(e, &dir))? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

/// One working day of edits on a folder made by [`create`] or [`create_small`]; `round`
/// numbers the day (new files go to `commun/jour-ROUND/`).
pub fn edit(root: &Path, seed: u64, round: u64) -> io::Result<Summary> {
    let mut rng = Rng::new(seed.wrapping_mul(1000).wrapping_add(round));
    let files = all_files(root)?;
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} has no files: create it first (sk-dataset create)",
                root.display()
            ),
        ));
    }
    let docs: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, DOC_EXT)).collect();
    let txts: Vec<&PathBuf> = files.iter().filter(|p| has_ext(p, TXT_EXT)).collect();
    let mut w = Writer::new();
    let mut s = Summary::default();
    let overwritten: HashSet<usize> = rng
        .sample(docs.len(), (docs.len() / 100).max(1))
        .into_iter()
        .collect();
    let mut chosen: Vec<usize> = overwritten.iter().copied().collect();
    chosen.sort_unstable();
    for &i in &chosen {
        let p = docs[i];
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        let size = doc_size(&mut rng);
        w.file(p, &document(&mut rng, ext, size))?;
        s.overwritten += 1;
    }
    let mut edited = rng.sample(txts.len(), (txts.len() / 100).max(1));
    edited.sort_unstable();
    for i in edited {
        let p = txts[i];
        let mut data = fs::read(p).map_err(|e| with_path(e, p))?;
        let mut mid = data.len() / 2;
        while mid < data.len() && data[mid] != b'\n' {
            mid += 1;
        }
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        let n = rng.range(40, 400) as usize;
        let ins = text(&mut rng, ext, n);
        let ins = ins.strip_prefix(b"date;client;r\xc3\xa9f\xc3\xa9rence;d\xc3\xa9signation;quantit\xc3\xa9;montant HT;TVA\n".as_slice()).unwrap_or(&ins);
        data.splice(mid..mid, ins.iter().copied());
        w.file(p, &data)?;
        s.edited += 1;
    }
    let pst = root.join("archives/mailbox.pst");
    if pst.is_file() {
        let mut data = fs::read(&pst)?;
        let mid = data.len() / 2;
        data.splice(mid..mid, rng.bytes(MIB as usize));
        w.file(&pst, &data)?;
        s.edited += 1;
    }
    let img = root.join("archives/poste-adjoint.img");
    if img.is_file() {
        let mut f = fs::OpenOptions::new().append(true).open(&img)?;
        f.write_all(&rng.bytes(4 * MIB as usize))?;
        s.edited += 1;
    }
    for i in 0..150 {
        let ext = *rng.pick(DOC_EXT);
        let size = doc_size(&mut rng);
        let data = document(&mut rng, ext, size);
        w.file(
            &root.join(format!("commun/jour-{round}/nouveau-{i:03}.{ext}")),
            &data,
        )?;
        s.added += 1;
    }
    let rest: Vec<&PathBuf> = docs
        .iter()
        .enumerate()
        .filter(|(i, _)| !overwritten.contains(i))
        .map(|(_, p)| *p)
        .collect();
    let mut gone = rng.sample(rest.len(), 80);
    gone.sort_unstable();
    let gone_set: HashSet<usize> = gone.iter().copied().collect();
    for &i in &gone {
        fs::remove_file(rest[i]).map_err(|e| with_path(e, rest[i]))?;
        s.deleted += 1;
    }
    let kept: Vec<&PathBuf> = rest
        .iter()
        .enumerate()
        .filter(|(i, _)| !gone_set.contains(i))
        .map(|(_, p)| *p)
        .collect();
    let mut touched = rng.sample(kept.len(), 80);
    touched.sort_unstable();
    for i in touched {
        let p = kept[i];
        let f = fs::OpenOptions::new().write(true).open(p)?;
        let m = f.metadata()?.modified()?;
        f.set_modified(m + Duration::from_secs(3600))?;
        s.touched += 1;
    }
    s.files = all_files(root)?.len() as u64;
    s.bytes = w.summary.bytes;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        all_files(root)
            .unwrap()
            .into_iter()
            .map(|p| {
                let d = fs::read(&p).unwrap();
                (p.strip_prefix(root).unwrap().to_path_buf(), d)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        let sa = create(&a, 0.03, 7).unwrap();
        create(&b, 0.03, 7).unwrap();
        create(&c, 0.03, 8).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
        assert!(sa.files > 150, "{sa:?}");
        let ea = edit(&a, 7, 1).unwrap();
        edit(&b, 7, 1).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_eq!((ea.added, ea.deleted, ea.touched), (150, 80, 80), "{ea:?}");
        assert!(ea.overwritten >= 1 && ea.edited >= 1, "{ea:?}");
        // Names with accents and spaces, a symlink (on Unix), empty folders.
        assert!(a.join("commun/à classer").is_dir());
        #[cfg(unix)]
        assert!(fs::symlink_metadata(a.join("commun/raccourci compta"))
            .unwrap()
            .is_symlink());
        // Documents carry the magic bytes of their type.
        for (p, d) in digest(&a) {
            match p.extension().and_then(|e| e.to_str()) {
                Some("pdf") => assert!(d.starts_with(b"%PDF-") && d.ends_with(b"%%EOF\n"), "{p:?}"),
                Some("docx") => assert!(d.starts_with(b"PK\x03\x04"), "{p:?}"),
                Some("jpg") => assert!(d.starts_with(b"\xff\xd8\xff"), "{p:?}"),
                Some("csv") => assert!(std::str::from_utf8(&d).is_ok(), "{p:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn small_files_are_small_and_spread_over_folders() {
        let t = tempfile::tempdir().unwrap();
        let s = create_small(t.path(), 1000, 3).unwrap();
        assert_eq!(s.files, 1000);
        let files = digest(t.path());
        assert_eq!(files.len(), 1000);
        assert!(files.iter().all(|(_, d)| (1024..=8192).contains(&d.len())));
        let dirs: HashSet<_> = files
            .iter()
            .map(|(p, _)| p.parent().unwrap().to_path_buf())
            .collect();
        assert_eq!(dirs.len(), 10);
    }

    #[test]
    fn a_non_empty_folder_is_refused_and_left_alone() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("keep.txt"), "mine").unwrap();
        let e = create(t.path(), 0.01, 1).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(fs::read(t.path().join("keep.txt")).unwrap(), b"mine");
    }
}
