//! PEM armour: finding the `-----BEGIN X-----` blocks in a text file, with their
//! RFC 1421 headers (`Proc-Type`, `DEK-Info`), and writing them.
//!
//! Written by hand (forty lines) rather than with the `pem` crate because import must
//! tolerate what real files carry between blocks (OpenSSL's "Bag Attributes", comments,
//! CRLF) and must say which block is damaged, by number and label.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::FormatError;

/// One armoured block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The label, e.g. `CERTIFICATE`.
    pub label: String,
    /// RFC 1421 headers, e.g. (`DEK-Info`, `AES-256-CBC,...`).
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub data: Vec<u8>,
    /// 1-based position in the file, for messages.
    pub index: usize,
}

impl Block {
    /// A header's value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// "PEM block 2 (CERTIFICATE)", for messages.
    pub fn describe(&self) -> String {
        format!("PEM block {} ({})", self.index, self.label)
    }
}

/// Whether the bytes look like PEM (a BEGIN line anywhere).
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every block in the file, in order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Block>, FormatError> {
    struct Open {
        label: String,
        headers: Vec<(String, String)>,
        body: String,
    }
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    for raw in bytes.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        let describe = |label: &str, n: usize| format!("PEM block {n} ({label})");
        let Some(block) = open.as_mut() else {
            if let Some(label) = line
                .strip_prefix("-----BEGIN ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                open = Some(Open {
                    label: label.to_string(),
                    headers: Vec::new(),
                    body: String::new(),
                });
            }
            continue;
        };
        let index = blocks.len() + 1;
        if let Some(end) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if end != block.label {
                return Err(FormatError::damaged(
                    describe(&block.label, index),
                    format!("ends with END {end}"),
                ));
            }
            let data = STANDARD.decode(block.body.as_bytes()).map_err(|e| {
                FormatError::damaged(
                    describe(&block.label, index),
                    format!("invalid base64 ({e})"),
                )
            })?;
            blocks.push(Block {
                label: std::mem::take(&mut block.label),
                headers: std::mem::take(&mut block.headers),
                data,
                index,
            });
            open = None;
        } else if line.starts_with("-----BEGIN ") {
            return Err(FormatError::damaged(
                describe(&block.label, index),
                "has no END line",
            ));
        } else if block.body.is_empty() && line.contains(':') {
            if let Some((k, v)) = line.split_once(':') {
                block
                    .headers
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        } else {
            block.body.push_str(line);
        }
    }
    if let Some(block) = open {
        return Err(FormatError::damaged(
            format!("PEM block {} ({})", blocks.len() + 1, block.label),
            "has no END line (truncated?)",
        ));
    }
    Ok(blocks)
}

/// Armours `der` under `label`, 64 columns, LF line ends.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
