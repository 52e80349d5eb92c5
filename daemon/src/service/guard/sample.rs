//! Whether a file's new content looks encrypted: its first and last 4 KiB compared with what
//! its extension promises. A `.docx` is a zip, a `.pdf` starts with `%PDF`, a `.jpg` is JPEG…:
//! the right magic bytes clear it, whatever the entropy of what follows (office files and
//! photos are compressed). A text type (`.txt`, `.csv`…) must read as text. Anything else
//! (`.pst`, `.img`, an unknown extension) cannot be judged by content and never counts.

/// Bytes sampled at each end.
pub(crate) const SAMPLE: usize = 4096;

/// Entropy (bits per byte) above which a sample is random-looking: encrypted or compressed.
/// Random data of 4 KiB measures about 7.95; French text about 4.5; a zip's deflated body 7.9.
const RANDOM_BITS: f64 = 7.2;

/// Extensions and the magic bytes their files start with.
const MAGIC: &[(&[&str], &[&[u8]])] = &[
    (
        &[
            "docx", "xlsx", "pptx", "docm", "xlsm", "odt", "ods", "odp", "zip", "jar", "epub",
        ],
        &[b"PK\x03\x04", b"PK\x05\x06"],
    ),
    (&["pdf"], &[b"%PDF"]),
    (&["jpg", "jpeg"], &[b"\xff\xd8\xff"]),
    (&["png"], &[b"\x89PNG"]),
    (&["gif"], &[b"GIF8"]),
    (&["doc", "xls", "ppt", "msg"], &[b"\xd0\xcf\x11\xe0"]),
    (&["gz", "tgz"], &[b"\x1f\x8b"]),
    (&["7z"], &[b"7z\xbc\xaf"]),
    (&["rar"], &[b"Rar!"]),
    (&["tif", "tiff"], &[b"II*\x00", b"MM\x00*"]),
];

/// Extensions whose files are text.
const TEXT: &[&str] = &[
    "txt", "csv", "md", "html", "htm", "xml", "json", "log", "ini", "conf", "rtf", "eml", "mbox",
    "tex", "yaml", "yml", "sql", "vcf", "ics",
];

/// Shannon entropy of `data`, in bits per byte.
pub(crate) fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether content with this `head` (first bytes) and `tail` (last bytes) looks encrypted
/// for a file named with extension `ext` (lowercase, without the dot).
pub(crate) fn looks_encrypted(ext: &str, head: &[u8], tail: &[u8]) -> bool {
    if head.len() < 64 {
        // Too little to judge (and an empty file is not an attack on its content).
        return false;
    }
    let random = entropy(head) > RANDOM_BITS || (tail.len() >= 64 && entropy(tail) > RANDOM_BITS);
    if let Some((_, magics)) = MAGIC.iter().find(|(exts, _)| exts.contains(&ext)) {
        return !magics.iter().any(|m| head.starts_with(m)) && entropy(head) > RANDOM_BITS;
    }
    if TEXT.contains(&ext) {
        return random;
    }
    false
}

/// The lowercase extension of `name` (`""` when it has none).
pub(crate) fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() && ext.len() <= 16 => {
            ext.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random-looking bytes: hashes of a counter.
    fn random(n: usize, seed: u64) -> Vec<u8> {
        (0..n.div_ceil(32) as u64)
            .flat_map(|i| sharekeep::Id::hash(&(seed << 32 | i).to_le_bytes()).0)
            .take(n)
            .collect()
    }

    #[test]
    fn content_against_what_its_extension_promises() {
        let noise = random(SAMPLE, 7);
        let text =
            "Devis n° 2025-114 pour la boulangerie Lefèvre : 12 fournées, livraison le mardi.\n"
                .repeat(60)
                .into_bytes();
        let zip = [b"PK\x03\x04".as_slice(), &noise[4..]].concat();
        let pdf = [b"%PDF-1.7\n".as_slice(), &noise[9..]].concat();
        let cases: &[(&str, &[u8], bool)] = &[
            ("docx", &noise, true),
            ("docx", &zip, false),
            ("pdf", &noise, true),
            ("pdf", &pdf, false),
            ("jpg", &noise, true),
            ("txt", &noise, true),
            ("csv", &text, false),
            ("txt", &text, false),
            // Nothing promised: not judged.
            ("pst", &noise, false),
            ("img", &noise, false),
            ("locked", &noise, false),
            ("", &noise, false),
            // Too short to judge.
            ("docx", &noise[..10], false),
            // A document of the right kind but plain (an old .doc saved as text): low entropy.
            ("doc", &text, false),
        ];
        for (ext, data, want) in cases {
            let tail = &data[data.len().saturating_sub(SAMPLE)..];
            assert_eq!(
                looks_encrypted(ext, data, tail),
                *want,
                "{ext}: entropy {:.2}",
                entropy(data)
            );
        }
        assert!(entropy(&noise) > 7.9);
        assert!(entropy(&text) < 5.0);
    }

    #[test]
    fn extensions() {
        for (name, want) in [
            ("devis.DOCX", "docx"),
            ("devis.docx.locked", "locked"),
            (".bashrc", ""),
            ("README", ""),
            ("a.", ""),
        ] {
            assert_eq!(extension(name), want, "{name}");
        }
    }
}
