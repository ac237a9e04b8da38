//! Where things are in the config text: turns byte spans into `file:line: field:` errors.
//!
//! The file is parsed twice: once into `toml::de::DeTable`, which keeps the span of every key and
//! value, and once into `Config`. A deserialization error's span is looked up in the first to
//! find the dotted field it falls in; a validation error looks up a field's line by name.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::ConfigError;

/// The config text, its name, and the span of every key in it.
pub(crate) struct Source<'a> {
    name: &'a str,
    text: &'a str,
    table: Spanned<DeTable<'a>>,
}

impl<'a> Source<'a> {
    /// Parses the TOML syntax; a syntax error names the line and, when it can, the field.
    pub(crate) fn parse(text: &'a str, name: &'a str) -> Result<Self, ConfigError> {
        let (table, errors) = DeTable::parse_recoverable(text);
        let source = Source { name, text, table };
        match errors.first() {
            Some(e) => Err(source.de_error(e)),
            None => Ok(source),
        }
    }

    /// An error naming `field` and the line it is on (or its section's line, or line 1).
    pub(crate) fn error(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        self.error_near(field, field, reason)
    }

    /// An error naming `field`, on the line of `field` if the file sets it, else on the line of
    /// `cause` (the field that made `field` necessary), else on its section's line.
    pub(crate) fn error_near(
        &self,
        field: &str,
        cause: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
        let anchor = if self.has(field) { field } else { cause };
        let pos = self.position_of(anchor).unwrap_or(0);
        ConfigError::Field {
            file: self.name.to_string(),
            line: self.line_at(pos),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Whether the file sets `field` (dotted path) itself.
    pub(crate) fn has(&self, field: &str) -> bool {
        lookup(self.table.get_ref(), field).is_some_and(|(_, found_all)| found_all)
    }

    /// Converts a TOML parse or deserialization error.
    pub(crate) fn de_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let field = field_at(self.table.get_ref(), &span, "")
            .or_else(|| self.field_from_line_text(span.start))
            .unwrap_or_else(|| "(syntax)".to_string());
        ConfigError::Field {
            file: self.name.to_string(),
            line: self.line_at(span.start),
            field,
            reason: e.message().trim().replace('\n', " "),
        }
    }

    /// Byte offset of the key for `field`, or of the deepest enclosing section that exists.
    fn position_of(&self, field: &str) -> Option<usize> {
        lookup(self.table.get_ref(), field).map(|(pos, _)| pos)
    }

    fn line_at(&self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        self.text.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// For text the parser could not make into a table: `key = …` on the error's line, prefixed
    /// by the last `[section]` header above it.
    fn field_from_line_text(&self, pos: usize) -> Option<String> {
        let line_no = self.line_at(pos);
        let mut section = String::new();
        for (i, line) in self.text.lines().enumerate() {
            let line = line.trim();
            if i + 1 == line_no {
                let key = line.split('=').next()?.trim();
                let ok = !key.is_empty()
                    && line.contains('=')
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                return ok.then(|| join(&section, key));
            }
            if line.starts_with('[') {
                section = line
                    .trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_string();
            }
        }
        None
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The dotted path of the key or value whose span holds `span.start`.
fn field_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let name = join(prefix, key.get_ref());
        if let DeValue::Table(inner) = value.get_ref() {
            if let Some(found) = field_at(inner, span, &name) {
                return Some(found);
            }
        }
        let hit = |r: Range<usize>| r.contains(&span.start) || (r.start == span.start);
        if hit(key.span()) || hit(value.span()) {
            return Some(name);
        }
    }
    None
}

/// Position of `field`'s key, and whether every segment was found (false: the position is that
/// of the deepest section that exists).
fn lookup(table: &DeTable<'_>, field: &str) -> Option<(usize, bool)> {
    let mut current = table;
    let mut best = None;
    let mut segments = field.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Some((key, value)) = current.iter().find(|(k, _)| k.get_ref() == segment) else {
            return best.map(|pos| (pos, false));
        };
        best = Some(key.span().start);
        if segments.peek().is_none() {
            return Some((key.span().start, true));
        }
        match value.get_ref() {
            DeValue::Table(inner) => current = inner,
            _ => return best.map(|pos| (pos, false)),
        }
    }
    best.map(|pos| (pos, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\n[http]\nlisten = \"127.0.0.1:80\"\n\n[media]\nport_base = 1\n";

    #[test]
    fn fields_have_lines() {
        let source = Source::parse(TEXT, "f.toml").unwrap();
        assert!(source.has("media.port_base"));
        assert!(!source.has("media.bind"));
        let e = source.error("media.port_base", "bad").to_string();
        assert_eq!(e, "f.toml:6: media.port_base: bad");
        // Absent field: its section's line.
        let e = source.error("media.bind", "bad").to_string();
        assert_eq!(e, "f.toml:5: media.bind: bad");
        // Absent section: line 1.
        let e = source.error("auth.algorithm", "bad").to_string();
        assert_eq!(e, "f.toml:1: auth.algorithm: bad");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let Err(e) = Source::parse("[media]\nport_base = 4x\n", "f.toml") else {
            panic!("parsed")
        };
        let ConfigError::Field { line, field, .. } = e else {
            panic!("{e}")
        };
        assert_eq!((line, field.as_str()), (2, "media.port_base"));
    }
}
