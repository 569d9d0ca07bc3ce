//! An RFC 2849 LDIF reader: content records only (change records are
//! rejected), folded lines, comments, base64 (`::`) values, attribute
//! options. A synchronous iterator over any `BufRead`, so it streams.

use std::io::BufRead;

use base64::Engine as _;

use crate::error::FileError;

pub use crate::MAX_VALUE_BYTES;

/// The longest logical line kept in memory: a value of
/// [`MAX_VALUE_BYTES`] in base64 plus room for the attribute's name.
/// Longer lines are read to their end but not kept.
pub const MAX_LINE_BYTES: usize = MAX_VALUE_BYTES / 3 * 4 + 4096;

/// One content record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The line the record starts on (1-based).
    pub line: usize,
    /// Its distinguished name.
    pub dn: String,
    /// Attributes in file order: name (options kept, e.g. `cn;lang-de`) and
    /// raw value bytes.
    pub attributes: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// The values of an attribute (name compared case-insensitively, options ignored).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.attributes
            .iter()
            .filter(move |(n, _)| n.split(';').next().is_some_and(|base| base.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads records one by one.
pub struct LdifReader<R> {
    input: R,
    /// Lines read so far.
    line: usize,
    /// A line read ahead (the start of the next logical line).
    pending: Option<Line>,
    done: bool,
}

impl<R: BufRead> LdifReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        LdifReader {
            input,
            line: 0,
            pending: None,
            done: false,
        }
    }

    /// The next physical line without its end, `None` at the end. A line
    /// longer than [`MAX_LINE_BYTES`] is read to its end but only its start
    /// is kept, and it comes back marked overlong.
    fn physical(&mut self) -> Result<Option<Line>, FileError> {
        let mut line = Line::default();
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(FileError::Io {
                        line: self.line + 1,
                        source: e,
                    });
                }
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, ends) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            line.push(&chunk[..take]);
            self.input.consume(take);
            if ends {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        while line.bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.bytes.pop();
        }
        Ok(Some(line))
    }

    /// The next logical line (folded lines joined), with its first line number.
    fn logical(&mut self) -> Result<Option<(usize, Line)>, FileError> {
        let first = match self.pending.take() {
            Some(l) => l,
            None => match self.physical()? {
                Some(l) => l,
                None => return Ok(None),
            },
        };
        let start = self.line;
        let mut joined = first;
        loop {
            match self.physical()? {
                Some(next) if next.bytes.starts_with(b" ") => {
                    joined.overlong |= next.overlong;
                    joined.push(&next.bytes[1..]);
                }
                Some(next) => {
                    self.pending = Some(next);
                    break;
                }
                None => break,
            }
        }
        Ok(Some((start, joined)))
    }

    /// Skips the rest of a record after an error, so the next one reads cleanly.
    fn skip_record(&mut self) {
        while let Ok(Some((_, l))) = self.logical() {
            if l.bytes.is_empty() {
                break;
            }
        }
    }

    fn read_record(&mut self) -> Result<Option<Record>, FileError> {
        // Skip blank lines, comments and the version line between records.
        let (line, first) = loop {
            match self.logical()? {
                None => return Ok(None),
                Some((_, l)) if l.bytes.is_empty() || l.bytes.starts_with(b"#") => continue,
                Some((n, l)) if n == 1 || l.bytes.starts_with(b"version:") => {
                    if let Some(v) = l.bytes.strip_prefix(b"version:") {
                        let v = String::from_utf8_lossy(v);
                        if v.trim() != "1" {
                            return Err(FileError::Ldif {
                                line: n,
                                dn: None,
                                field: Some("version".into()),
                                message: format!("LDIF version {:?} is not supported (only 1)", truncate(v.trim())),
                            });
                        }
                        continue;
                    }
                    break (n, l);
                }
                Some(found) => break found,
            }
        };
        let (name, value) = parse_line(line, &first, None)?;
        if !name.eq_ignore_ascii_case("dn") {
            return Err(FileError::Ldif {
                line,
                dn: None,
                field: Some(name),
                message: "a record must start with 'dn:'".into(),
            });
        }
        let dn = String::from_utf8(value).map_err(|_| FileError::Ldif {
            line,
            dn: None,
            field: Some("dn".into()),
            message: "the DN is not valid UTF-8".into(),
        })?;
        let mut attributes = Vec::new();
        loop {
            match self.logical()? {
                None => break,
                Some((_, l)) if l.bytes.is_empty() => break,
                Some((_, l)) if l.bytes.starts_with(b"#") => continue,
                Some((n, l)) => {
                    let (name, value) = parse_line(n, &l, Some(&dn))?;
                    if name.eq_ignore_ascii_case("changetype") || name.eq_ignore_ascii_case("control") {
                        return Err(FileError::Ldif {
                            line: n,
                            dn: Some(dn),
                            field: Some(name),
                            message: "change records are not accepted: export the directory's content (ldifde, slapcat, ldapsearch), not changes".into(),
                        });
                    }
                    attributes.push((name, value));
                }
            }
        }
        Ok(Some(Record { line, dn, attributes }))
    }
}

/// A physical or logical line as read: its bytes (only the start of an
/// overlong one) and whether it was longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
struct Line {
    bytes: Vec<u8>,
    overlong: bool,
}

impl Line {
    /// Appends `more`, keeping at most [`MAX_LINE_BYTES`] (then only the
    /// start, enough to name the attribute in the error).
    fn push(&mut self, more: &[u8]) {
        if self.overlong {
            return;
        }
        if self.bytes.len() + more.len() > MAX_LINE_BYTES {
            self.overlong = true;
            let keep = (KEPT_OF_OVERLONG).saturating_sub(self.bytes.len());
            self.bytes.truncate(KEPT_OF_OVERLONG);
            self.bytes.extend_from_slice(&more[..keep.min(more.len())]);
            return;
        }
        self.bytes.extend_from_slice(more);
    }
}

/// Bytes kept of an overlong line: enough for the attribute's name.
const KEPT_OF_OVERLONG: usize = 256;

/// Splits `name: value`, `name:: base64` (and refuses `name:< url`). A
/// plain value must be UTF-8 and no value may exceed [`MAX_VALUE_BYTES`].
fn parse_line(line: usize, text: &Line, dn: Option<&str>) -> Result<(String, Vec<u8>), FileError> {
    let err = |field: Option<&str>, message: String| FileError::Ldif {
        line,
        dn: dn.map(str::to_owned),
        field: field.map(str::to_owned),
        message,
    };
    let Some(colon) = text.bytes.iter().position(|b| *b == b':') else {
        return Err(err(
            None,
            format!(
                "expected 'attribute: value', found {:?}",
                truncate(&String::from_utf8_lossy(&text.bytes))
            ),
        ));
    };
    let (name, rest) = (&text.bytes[..colon], &text.bytes[colon + 1..]);
    let name = match std::str::from_utf8(name) {
        Ok(n)
            if !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.')) =>
        {
            n
        }
        _ => {
            return Err(err(
                None,
                format!(
                    "{:?} is not an attribute description",
                    truncate(&String::from_utf8_lossy(name))
                ),
            ));
        }
    };
    let too_big = |size: Option<usize>| {
        err(
            Some(name),
            format!(
                "the value{} is over the limit of {MAX_VALUE_BYTES} bytes per value",
                size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
            ),
        )
    };
    if text.overlong {
        return Err(too_big(None));
    }
    let value = if let Some(b64) = rest.strip_prefix(b":") {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim_ascii())
            .map_err(|e| err(Some(name), format!("the base64 value does not decode: {e}")))?
    } else if rest.starts_with(b"<") {
        return Err(err(
            Some(name),
            "URL values (':<') are not read, for safety; inline the value".into(),
        ));
    } else {
        let plain = rest.strip_prefix(b" ").unwrap_or(rest);
        let start = plain.iter().position(|b| *b != b' ').unwrap_or(plain.len());
        let plain = &plain[start..];
        if std::str::from_utf8(plain).is_err() {
            return Err(err(
                Some(name),
                "the value is not valid UTF-8 (binary values must be base64, written with '::')".into(),
            ));
        }
        plain.to_vec()
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(too_big(Some(value.len())));
    }
    Ok((name.to_owned(), value))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Record, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e @ FileError::Io { .. }) => {
                self.done = true;
                Some(Err(e))
            }
            Err(e) => {
                self.skip_record();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Record, FileError>> {
        LdifReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn folded_lines_comments_base64_and_options() {
        let text = "version: 1\n# a comment\n#  folded comment\n\ndn: cn=Zo\n ë Müller,ou=people,dc=acme,dc=test\ncn;lang-de: Zoë\nsn:: TcO8bGxlcg==\ndescription: folded\n  value\n\ndn:: Y249Qm9iLGRjPXg=\ncn: Bob\n";
        let records: Vec<Record> = read(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].dn, "cn=Zoë Müller,ou=people,dc=acme,dc=test");
        assert_eq!(records[0].line, 5);
        assert_eq!(records[0].values("cn").next(), Some("Zoë".as_bytes()));
        assert_eq!(records[0].values("SN").next(), Some("Müller".as_bytes()));
        assert_eq!(records[0].values("description").next(), Some("folded value".as_bytes()));
        assert_eq!(records[1].dn, "cn=Bob,dc=x");
    }

    #[test]
    fn a_change_record_is_rejected_and_the_next_record_still_reads() {
        let text = "dn: cn=a,dc=x\nchangetype: modify\nreplace: sn\nsn: A\n-\n\ndn: cn=b,dc=x\ncn: b\n";
        let out = read(text);
        assert_eq!(out.len(), 2);
        let e = out[0].as_ref().unwrap_err().to_string();
        assert_eq!(
            e,
            "LDIF line 2, entry cn=a,dc=x, field changetype: change records are not accepted: export the directory's content (ldifde, slapcat, ldapsearch), not changes"
        );
        assert_eq!(out[1].as_ref().unwrap().dn, "cn=b,dc=x");
    }

    #[test]
    fn bad_base64_and_missing_colon_name_the_line_and_field() {
        let out = read("dn: cn=a,dc=x\nobjectGUID:: !!!\n\ndn: cn=b,dc=x\nbroken line\n\ndn: cn=c,dc=x\n");
        assert_eq!(out.len(), 3);
        let e0 = out[0].as_ref().unwrap_err().to_string();
        assert!(
            e0.starts_with("LDIF line 2, entry cn=a,dc=x, field objectGUID: the base64 value does not decode"),
            "{e0}"
        );
        let e1 = out[1].as_ref().unwrap_err().to_string();
        assert!(
            e1.starts_with("LDIF line 5, entry cn=b,dc=x: expected 'attribute: value'"),
            "{e1}"
        );
        assert_eq!(out[2].as_ref().unwrap().dn, "cn=c,dc=x");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let bytes = b"dn: cn=a,dc=x\ncn: \xff\xfe\n\ndn: cn=b,dc=x\n";
        let out: Vec<_> = LdifReader::new(&bytes[..]).collect();
        assert!(out[0].as_ref().unwrap_err().to_string().contains("not valid UTF-8"));
        assert_eq!(out.last().unwrap().as_ref().unwrap().dn, "cn=b,dc=x");
    }

    #[test]
    fn crlf_line_ends_are_accepted() {
        let out = read("dn: cn=a,dc=x\r\ncn: a\r\n\r\n");
        assert_eq!(out[0].as_ref().unwrap().values("cn").next(), Some(&b"a"[..]));
    }
}
