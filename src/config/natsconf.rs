//! The nats-server configuration syntax (and its TOML twin) turned into a tree of values that
//! remembers, for every value, the file and line it came from.
//!
//! Differences from the Go lexer, on purpose: escape sequences are processed only in
//! double-quoted strings (an unquoted `C:\temp` stays as written), relative `include` paths are
//! resolved against the folder of the including file, and nesting and include depth are bounded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file and 1-based line a value (or key) was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file the value was read from (the including file's path for included files is the
    /// included file's own path).
    pub file: Arc<PathBuf>,
    /// 1-based line number.
    pub line: usize,
}

/// One parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted or unquoted string (including IP-like values such as `127.0.0.1:4222`).
    String(String),
    /// An integer, after applying any size suffix (`1k` = 1000, `1kb` = 1024, ...).
    Integer(i64),
    /// A floating point number.
    Float(f64),
    /// `true/false/yes/no/on/off` (any case) when unquoted.
    Bool(bool),
    /// An ISO-8601 Zulu datetime such as `2019-01-01T00:00:00Z`, kept as written.
    DateTime(String),
    /// `[a, b, c]`.
    Array(Vec<Node>),
    /// `{ key: value ... }` or the top level of a file.
    Map(Map),
}

/// A value together with the position of the key (for map entries) or of the value itself
/// (for array elements).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub pos: Position,
    /// Whether a `$NAME` reference used this entry as a variable: such keys define values for
    /// other keys, so they are not unknown settings.
    pub referenced: bool,
}

/// The entries of a block in file order. Keys keep the case they were written in.
/// When the same key (exact spelling) appears twice in one block, the last one wins and
/// only it is kept.
pub type Map = Vec<(String, Node)>;

/// A syntax error (or unreadable file / missing variable / bad include) with its position:
/// `<file>:<line>: <message>`, or only the message (which then names the file) when the error
/// is about the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located(self))]
pub struct ParseError {
    /// The file in which the error was found (an included file when the error is inside it).
    pub file: PathBuf,
    /// 1-based line; 0 when the error has no line (the file could not be read at all), and
    /// the message names the file.
    pub line: usize,
    /// One-line description, e.g. `invalid escape character 'U'` or
    /// `variable reference for 'PORT' can not be found`.
    pub message: String,
}

/// The text of a [`ParseError`]: with `<file>:<line>: ` in front when it has a line.
struct Located<'a>(&'a ParseError);

impl std::fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.0;
        if e.line == 0 {
            f.write_str(&e.message)
        } else {
            write!(f, "{}:{}: {}", e.file.display(), e.line, e.message)
        }
    }
}

/// Deepest nesting of blocks and arrays accepted.
const MAX_DEPTH: usize = 128;
/// Deepest chain of includes accepted.
const MAX_INCLUDE_DEPTH: usize = 10;

/// Parses a nats-server style config file. `include` paths are resolved relative to the folder
/// of the file that contains the `include`. `$VAR` references are looked up in enclosing blocks
/// and then in the process environment.
pub fn parse_file(path: &Path) -> Result<Map, ParseError> {
    let env = |name: &str| std::env::var(name).ok();
    let text = read_text(path, None)?;
    let mut parser = Parser::new(&text, path, &env, vec![path.to_path_buf()]);
    parser.parse_document()
}

/// Parses config text as if it had been read from `origin` (used for error positions and as the
/// base folder of relative includes). `env` resolves variables that no block defines.
pub fn parse_str(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Map, ParseError> {
    let mut parser = Parser::new(text, origin, env, vec![origin.to_path_buf()]);
    parser.parse_document()
}

fn read_text(path: &Path, from: Option<&Position>) -> Result<String, ParseError> {
    std::fs::read_to_string(path).map_err(|e| match from {
        Some(pos) => ParseError {
            file: pos.file.as_ref().clone(),
            line: pos.line,
            message: format!("cannot read include file {}: {e}", path.display()),
        },
        None => ParseError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read {}: {e}", path.display()),
        },
    })
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    file: Arc<PathBuf>,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Blocks being built, outermost first; the last one receives new entries.
    scopes: Vec<Map>,
    depth: usize,
    /// Files being parsed, outermost first (include cycle detection).
    includes: Vec<PathBuf>,
}

fn is_terminator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | ']' | '}')
}

impl<'a> Parser<'a> {
    fn new(
        text: &str,
        origin: &Path,
        env: &'a dyn Fn(&str) -> Option<String>,
        includes: Vec<PathBuf>,
    ) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            file: Arc::new(origin.to_path_buf()),
            env,
            scopes: Vec::new(),
            depth: 0,
            includes,
        }
    }

    fn here(&self) -> Position {
        Position {
            file: self.file.clone(),
            line: self.line,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(self.error_at(self.line, message))
    }

    fn error_at(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.as_ref().clone(),
            line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || (self.peek() == Some('/') && self.peek_at(1) == Some('/'))
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Skips spaces and tabs (not newlines) and a trailing comment.
    fn skip_inline_space(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' || c == '\r' {
                self.bump();
            } else if self.at_comment() {
                self.skip_to_eol();
            } else {
                break;
            }
        }
    }

    /// Skips whitespace, newlines, comments and the separators `,` and `;`.
    fn skip_separators(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' || c == ';' {
                self.bump();
            } else if self.at_comment() {
                self.skip_to_eol();
            } else {
                break;
            }
        }
    }

    fn parse_document(&mut self) -> Result<Map, ParseError> {
        self.scopes.push(Map::new());
        self.skip_separators();
        if self.peek() == Some('{') {
            // A JSON-like file: the whole content is one block.
            self.bump();
            self.parse_entries(Some('}'))?;
            self.skip_separators();
            if self.peek().is_some() {
                return self.err("unexpected content after the closing '}' of the file");
            }
        } else {
            self.parse_entries(None)?;
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// Parses `key value` entries into the innermost scope until `closing` (or end of input).
    fn parse_entries(&mut self, closing: Option<char>) -> Result<(), ParseError> {
        let open_line = self.line;
        loop {
            self.skip_separators();
            match self.peek() {
                None => {
                    return match closing {
                        Some(c) => Err(self.error_at(
                            open_line,
                            format!("block opened here is never closed (missing '{c}')"),
                        )),
                        None => Ok(()),
                    }
                }
                Some(c) if Some(c) == closing => {
                    self.bump();
                    return Ok(());
                }
                Some(c @ ('}' | ']')) => return self.err(format!("unexpected '{c}'")),
                Some(_) => self.parse_entry()?,
            }
        }
    }

    fn parse_key(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let mut key = String::new();
                loop {
                    match self.bump() {
                        Some(c) if c == q => return Ok(key),
                        Some('\n') | None => return self.err("unterminated quoted key"),
                        Some(c) => key.push(c),
                    }
                }
            }
            _ => {
                let mut key = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace()
                        || matches!(c, ':' | '=' | '{' | '[' | ',' | ';' | '}' | ']')
                    {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                if key.is_empty() {
                    return self.err(format!(
                        "expected a key, found '{}'",
                        self.peek().unwrap_or(' ')
                    ));
                }
                Ok(key)
            }
        }
    }

    fn parse_entry(&mut self) -> Result<(), ParseError> {
        let key_line = self.line;
        let quoted = matches!(self.peek(), Some('"' | '\''));
        let key = self.parse_key()?;
        if !quoted && key.eq_ignore_ascii_case("include") && matches!(self.peek(), Some(' ' | '\t'))
        {
            return self.parse_include(key_line);
        }
        self.skip_inline_space();
        if matches!(self.peek(), Some(':' | '=')) {
            self.bump();
            self.skip_inline_space();
        }
        match self.peek() {
            None | Some('\n') | Some(',') | Some(';') | Some('}') | Some(']') => {
                return Err(self.error_at(key_line, format!("expected a value after key '{key}'")));
            }
            _ => {}
        }
        let pos = Position {
            file: self.file.clone(),
            line: key_line,
        };
        let value = self.parse_value()?;
        self.insert(
            key,
            Node {
                value,
                pos,
                referenced: false,
            },
        );
        Ok(())
    }

    fn insert(&mut self, key: String, node: Node) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.retain(|(k, _)| *k != key);
            scope.push((key, node));
        }
    }

    fn parse_include(&mut self, line: usize) -> Result<(), ParseError> {
        self.skip_inline_space();
        let target = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        Some(c) if c == q => break,
                        Some('\n') | None => return self.err("unterminated include path"),
                        Some(c) => s.push(c),
                    }
                }
                s
            }
            _ => {
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || matches!(c, ';' | ',' | '}') {
                        break;
                    }
                    s.push(c);
                    self.bump();
                }
                s
            }
        };
        if target.is_empty() {
            return Err(self.error_at(line, "include needs a file path"));
        }
        let base = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = base.join(&target);
        let at = Position {
            file: self.file.clone(),
            line,
        };
        if self.includes.len() > MAX_INCLUDE_DEPTH {
            return Err(self.error_at(
                line,
                "include depth exceeded (more than 10 nested includes)",
            ));
        }
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self
            .includes
            .iter()
            .any(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()) == canonical)
        {
            return Err(self.error_at(
                line,
                format!("include cycle: {} includes itself", path.display()),
            ));
        }
        let text = read_text(&path, Some(&at))?;
        let mut includes = self.includes.clone();
        includes.push(path.clone());
        let mut sub = Parser::new(&text, &path, self.env, includes);
        sub.scopes = std::mem::take(&mut self.scopes);
        sub.depth = self.depth;
        let result = sub.parse_entries(None);
        self.scopes = std::mem::take(&mut sub.scopes);
        result
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn parse_value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some('{') => {
                self.bump();
                self.enter()?;
                self.scopes.push(Map::new());
                let result = self.parse_entries(Some('}'));
                let map = self.scopes.pop().unwrap_or_default();
                self.depth -= 1;
                result.map(|()| Value::Map(map))
            }
            Some('[') => {
                self.bump();
                self.enter()?;
                let result = self.parse_array();
                self.depth -= 1;
                result.map(Value::Array)
            }
            Some('"') => self.parse_double_quoted().map(Value::String),
            Some('\'') => self.parse_single_quoted().map(Value::String),
            Some('(') if self.block_string_starts() => self.parse_block_string().map(Value::String),
            _ => {
                let line = self.line;
                let mut token = String::new();
                while let Some(c) = self.peek() {
                    if is_terminator(c) {
                        break;
                    }
                    token.push(c);
                    self.bump();
                }
                self.classify(&token, line)
            }
        }
    }

    fn parse_array(&mut self) -> Result<Vec<Node>, ParseError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            self.skip_separators();
            match self.peek() {
                None => {
                    return Err(
                        self.error_at(open_line, "array opened here is never closed (missing ']')")
                    )
                }
                Some(']') => {
                    self.bump();
                    return Ok(items);
                }
                Some('}') => return self.err("unexpected '}' inside an array"),
                Some(_) => {
                    let pos = self.here();
                    let value = self.parse_value()?;
                    items.push(Node {
                        value,
                        pos,
                        referenced: false,
                    });
                }
            }
        }
    }

    fn parse_double_quoted(&mut self) -> Result<String, ParseError> {
        let start = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('x') => {
                        let hex: String = [self.bump(), self.bump()].iter().flatten().collect();
                        match u8::from_str_radix(&hex, 16) {
                            Ok(b) if hex.len() == 2 => out.push(char::from(b)),
                            _ => return self.err(format!("invalid hex escape '\\x{hex}'")),
                        }
                    }
                    Some(c) => return self.err(format!("invalid escape character '{c}'")),
                    None => return Err(self.error_at(start, "unterminated string")),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn parse_single_quoted(&mut self) -> Result<String, ParseError> {
        let start = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// `(` followed only by spaces up to the end of the line.
    fn block_string_starts(&self) -> bool {
        let mut i = self.pos + 1;
        while let Some(c) = self.chars.get(i) {
            match c {
                ' ' | '\t' | '\r' => i += 1,
                '\n' => return true,
                _ => return false,
            }
        }
        false
    }

    fn parse_block_string(&mut self) -> Result<String, ParseError> {
        let start = self.line;
        self.skip_to_eol();
        self.bump();
        let mut lines = Vec::new();
        loop {
            if self.peek().is_none() {
                return Err(
                    self.error_at(start, "block string is never closed (a line with only ')')")
                );
            }
            let mut line = String::new();
            while let Some(c) = self.peek() {
                if c == '\n' {
                    break;
                }
                line.push(c);
                self.bump();
            }
            self.bump();
            if line.trim() == ")" {
                return Ok(lines.join("\n"));
            }
            lines.push(line);
        }
    }

    /// The value of the variable `name` from the innermost block defining it; marks that entry
    /// as referenced.
    fn lookup(&mut self, name: &str) -> Option<Value> {
        let (_, node) = self
            .scopes
            .iter_mut()
            .rev()
            .flat_map(|scope| scope.iter_mut().rev())
            .find(|(k, _)| k == name)?;
        node.referenced = true;
        Some(node.value.clone())
    }

    fn classify(&mut self, token: &str, line: usize) -> Result<Value, ParseError> {
        let lower = token.to_ascii_lowercase();
        match lower.as_str() {
            "true" | "yes" | "on" => return Ok(Value::Bool(true)),
            "false" | "no" | "off" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if let Some(name) = token.strip_prefix('$') {
            if !token.starts_with("$2a$") {
                if name.is_empty() {
                    return Err(self.error_at(line, "'$' without a variable name"));
                }
                if let Some(v) = self.lookup(name) {
                    return Ok(v);
                }
                if let Some(text) = (self.env)(name) {
                    return self.parse_env_value(name, &text, line);
                }
                return Err(self.error_at(
                    line,
                    format!("variable reference for '{name}' can not be found"),
                ));
            }
        }
        let starts_numeric = token.starts_with(|c: char| c.is_ascii_digit())
            || (token.starts_with('-') && token[1..].starts_with(|c: char| c.is_ascii_digit()));
        if starts_numeric {
            return self.classify_numeric(token, line);
        }
        Ok(Value::String(token.to_string()))
    }

    fn parse_env_value(
        &mut self,
        name: &str,
        text: &str,
        line: usize,
    ) -> Result<Value, ParseError> {
        let origin = self.file.as_ref().clone();
        let mut sub = Parser::new(text, &origin, self.env, self.includes.clone());
        sub.line = line;
        sub.depth = self.depth;
        sub.skip_separators();
        if sub.peek().is_none() {
            return Ok(Value::String(String::new()));
        }
        let value = sub.parse_value().map_err(|e| {
            self.error_at(line, format!("environment variable {name}: {}", e.message))
        })?;
        sub.skip_separators();
        if sub.peek().is_some() {
            // Not a single value: keep the raw text.
            return Ok(Value::String(text.to_string()));
        }
        Ok(value)
    }

    fn classify_numeric(&self, token: &str, line: usize) -> Result<Value, ParseError> {
        if is_datetime(token) {
            return Ok(Value::DateTime(token.to_string()));
        }
        let (sign, digits) = match token.strip_prefix('-') {
            Some(rest) => (-1i64, rest),
            None => (1, token),
        };
        let num_end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        let (number, suffix) = digits.split_at(num_end);
        if suffix.is_empty() {
            return number
                .parse::<i64>()
                .map(|n| Value::Integer(sign * n))
                .map_err(|_| self.error_at(line, format!("integer '{token}' is out of range")));
        }
        if let Some(mult) = size_multiplier(suffix) {
            let n: i64 = number
                .parse()
                .map_err(|_| self.error_at(line, format!("integer '{token}' is out of range")))?;
            return n
                .checked_mul(mult)
                .map(|v| Value::Integer(sign * v))
                .ok_or_else(|| self.error_at(line, format!("integer '{token}' is out of range")));
        }
        if suffix.starts_with('.') && suffix.matches('.').count() == 1 {
            let frac = &suffix[1..];
            if !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()) {
                if let Ok(f) = token.parse::<f64>() {
                    return Ok(Value::Float(f));
                }
            }
        }
        Ok(Value::String(token.to_string()))
    }
}

fn size_multiplier(suffix: &str) -> Option<i64> {
    const K: i64 = 1000;
    const KI: i64 = 1024;
    Some(match suffix.to_ascii_lowercase().as_str() {
        "k" => K,
        "kb" | "ki" | "kib" => KI,
        "m" => K * K,
        "mb" | "mi" | "mib" => KI * KI,
        "g" => K * K * K,
        "gb" | "gi" | "gib" => KI * KI * KI,
        "t" => K * K * K * K,
        "tb" | "ti" | "tib" => KI * KI * KI * KI,
        _ => return None,
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`
fn is_datetime(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Reads a TOML file into the same tree, so that `nas.toml` can carry the same keys as
/// `nas.conf`. Tables become maps, arrays arrays, and every node carries its line.
pub fn parse_toml_file(path: &Path) -> Result<Map, ParseError> {
    let text = read_text(path, None)?;
    parse_toml_str(&text, path)
}

/// Parses TOML text as if read from `origin`.
pub fn parse_toml_str(text: &str, origin: &Path) -> Result<Map, ParseError> {
    use toml::de::{DeTable, DeValue};
    let file = Arc::new(origin.to_path_buf());
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table = DeTable::parse(text).map_err(|e| {
        let message = e.message().replace('\n', " ").trim().to_string();
        match e.span() {
            Some(span) => ParseError {
                file: origin.to_path_buf(),
                line: line_of(span.start),
                message,
            },
            None => ParseError {
                file: origin.to_path_buf(),
                line: 0,
                message: format!("{}: {message}", origin.display()),
            },
        }
    })?;

    fn convert(
        value: &DeValue<'_>,
        line: usize,
        file: &Arc<PathBuf>,
        line_of: &dyn Fn(usize) -> usize,
    ) -> Result<Value, ParseError> {
        Ok(match value {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::Integer(n),
                Err(_) => {
                    return Err(ParseError {
                        file: file.as_ref().clone(),
                        line,
                        message: format!("integer '{}' is out of range", i.as_str()),
                    })
                }
            },
            DeValue::Float(f) => {
                Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN))
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::DateTime(d.to_string()),
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        let l = line_of(item.span().start);
                        Ok(Node {
                            value: convert(item.get_ref(), l, file, line_of)?,
                            pos: Position {
                                file: file.clone(),
                                line: l,
                            },
                            referenced: false,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            DeValue::Table(t) => Value::Map(table_to_map(t, file, line_of)?),
        })
    }

    fn table_to_map(
        table: &DeTable<'_>,
        file: &Arc<PathBuf>,
        line_of: &dyn Fn(usize) -> usize,
    ) -> Result<Map, ParseError> {
        let mut out = Map::new();
        for (key, value) in table.iter() {
            let line = line_of(key.span().start);
            out.push((
                key.get_ref().to_string(),
                Node {
                    value: convert(value.get_ref(), line, file, line_of)?,
                    pos: Position {
                        file: file.clone(),
                        line,
                    },
                    referenced: false,
                },
            ));
        }
        Ok(out)
    }

    table_to_map(table.get_ref(), &file, &line_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Map {
        parse_str(text, Path::new("/cfg/t.conf"), &no_env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(text: &str) -> ParseError {
        parse_str(text, Path::new("/cfg/t.conf"), &no_env).unwrap_err()
    }

    fn get<'m>(map: &'m Map, key: &str) -> &'m Node {
        map.iter()
            .find(|(k, _)| k == key)
            .map(|(_, n)| n)
            .unwrap_or_else(|| panic!("no key {key} in {map:?}"))
    }

    fn val(map: &Map, key: &str) -> Value {
        get(map, key).value.clone()
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn sub(map: &Map, key: &str) -> Map {
        match val(map, key) {
            Value::Map(m) => m,
            other => panic!("{key} is {other:?}"),
        }
    }

    #[test]
    fn three_key_value_forms_and_quoted_keys() {
        let m = parse("a: 1\nb = 2\nc 3\n\"d e\": 4\n'f': 5\ng:6\nh=7");
        for (k, v) in [
            ("a", 1),
            ("b", 2),
            ("c", 3),
            ("d e", 4),
            ("f", 5),
            ("g", 6),
            ("h", 7),
        ] {
            assert_eq!(val(&m, k), Value::Integer(v), "{k}");
        }
    }

    #[test]
    fn terminators_and_inline_blocks() {
        let m =
            parse("a: 1; b: 2, c: 3\nhttp { host: 0.0.0.0, port: 9090 }\nx: {y: 1}\nz = {w = 2}");
        assert_eq!(val(&m, "c"), Value::Integer(3));
        let http = sub(&m, "http");
        assert_eq!(val(&http, "host"), s("0.0.0.0"));
        assert_eq!(val(&http, "port"), Value::Integer(9090));
        assert_eq!(val(&sub(&m, "x"), "y"), Value::Integer(1));
        assert_eq!(val(&sub(&m, "z"), "w"), Value::Integer(2));
    }

    #[test]
    fn the_seed_example() {
        let m = parse(
            r#"operatorjwtpath: "/etc/nats/op.jwt"
http { host: 0.0.0.0, port: 9090 }
store = { dir: /var/lib/nas, shard: true }
nats: { servers: ["nats://n1:4222", "nats://n2:4222"], usercredentials: "/etc/nats/sys.creds" }
logging { colors: false, pid: yes }
"#,
        );
        assert_eq!(val(&m, "operatorjwtpath"), s("/etc/nats/op.jwt"));
        assert_eq!(val(&sub(&m, "store"), "dir"), s("/var/lib/nas"));
        assert_eq!(val(&sub(&m, "store"), "shard"), Value::Bool(true));
        let Value::Array(servers) = val(&sub(&m, "nats"), "servers") else {
            panic!()
        };
        assert_eq!(servers[1].value, s("nats://n2:4222"));
        assert_eq!(val(&sub(&m, "logging"), "pid"), Value::Bool(true));
        assert_eq!(get(&m, "logging").pos.line, 5);
    }

    #[test]
    fn top_level_braces() {
        let m = parse("{\n  \"Store\": { \"Dir\": \"/tmp/x\" },\n  \"HTTP\": { \"ReadTimeout\": 2000, \"Port\": 80, \"Host\": \"nats.io\" }\n}\n");
        assert_eq!(val(&sub(&m, "Store"), "Dir"), s("/tmp/x"));
        assert_eq!(val(&sub(&m, "HTTP"), "Port"), Value::Integer(80));
        assert!(parse_err("{ a: 1 } b: 2")
            .message
            .contains("after the closing"));
    }

    #[test]
    fn arrays_with_maps_newlines_and_comments() {
        let m = parse("list [\n  1, # one\n  two // second\n  {k: v}\n  [3, 4]\n]\n");
        let Value::Array(items) = val(&m, "list") else {
            panic!()
        };
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].value, s("two"));
        assert_eq!(items[1].pos.line, 3);
        assert!(matches!(&items[2].value, Value::Map(x) if x[0].0 == "k"));
        assert!(matches!(&items[3].value, Value::Array(x) if x.len() == 2));
    }

    #[test]
    fn comments_everywhere_but_not_inside_values() {
        let m = parse("# top\n// also top\na: 1 # after\nb { # in block\n  c: nats://x:4222 // after value\n}\nd: http://a/b#c\n");
        assert_eq!(val(&m, "a"), Value::Integer(1));
        assert_eq!(val(&sub(&m, "b"), "c"), s("nats://x:4222"));
        assert_eq!(val(&m, "d"), s("http://a/b#c"));
    }

    #[test]
    fn strings_and_escapes() {
        let m = parse(
            r#"a: "t\tn\nr\rq\"b\\x\x41"
b: 'raw \t stays'
c: C:\temp
"#,
        );
        assert_eq!(val(&m, "a"), s("t\tn\nr\rq\"b\\xA"));
        assert_eq!(val(&m, "b"), s("raw \\t stays"));
        assert_eq!(val(&m, "c"), s("C:\\temp"));
        let e = parse_err("a: 1\nb: \"bad \\U escape\"");
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "invalid escape character 'U'")
        );
        assert_eq!(parse_err("a: \"open\nb: 1").message, "unterminated string");
    }

    #[test]
    fn booleans_in_every_spelling() {
        let m = parse("a: true\nb: YES\nc: On\nd: false\ne: no\nf: OFF\ng: \"true\"");
        for k in ["a", "b", "c"] {
            assert_eq!(val(&m, k), Value::Bool(true), "{k}");
        }
        for k in ["d", "e", "f"] {
            assert_eq!(val(&m, k), Value::Bool(false), "{k}");
        }
        assert_eq!(val(&m, "g"), s("true"));
    }

    #[test]
    fn numbers_suffixes_and_look_alikes() {
        let m = parse(
            "a: 42\nb: -7\nc: 1k\nd: 1KB\ne: 2m\nf: 1mb\ng: 1g\nh: 1gb\ni: 1ki\nj: 1mib\nk: 1.5\nl: 127.0.0.1\nm: 127.0.0.1:4222\nn: 43a\no: 2019-01-01T00:00:00Z\np: 10s\nq: 1t\nr: 1tb",
        );
        let int = |k: &str| match val(&m, k) {
            Value::Integer(i) => i,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(int("a"), 42);
        assert_eq!(int("b"), -7);
        assert_eq!(int("c"), 1000);
        assert_eq!(int("d"), 1024);
        assert_eq!(int("e"), 2_000_000);
        assert_eq!(int("f"), 1 << 20);
        assert_eq!(int("g"), 1_000_000_000);
        assert_eq!(int("h"), 1 << 30);
        assert_eq!(int("i"), 1024);
        assert_eq!(int("j"), 1 << 20);
        assert_eq!(int("q"), 1_000_000_000_000);
        assert_eq!(int("r"), 1 << 40);
        assert_eq!(val(&m, "k"), Value::Float(1.5));
        assert_eq!(val(&m, "l"), s("127.0.0.1"));
        assert_eq!(val(&m, "m"), s("127.0.0.1:4222"));
        assert_eq!(val(&m, "n"), s("43a"));
        assert_eq!(val(&m, "o"), Value::DateTime("2019-01-01T00:00:00Z".into()));
        assert_eq!(val(&m, "p"), s("10s"));
        let e = parse_err("\nbig: 99999999999999999999");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("out of range"), "{}", e.message);
        assert!(parse_err("big: 9999999999gb")
            .message
            .contains("out of range"));
    }

    #[test]
    fn variables_from_blocks_and_environment() {
        let env = |name: &str| match name {
            "PORT" => Some("9090".to_string()),
            "HOSTNAME_X" => Some("example.org".to_string()),
            "FLAG" => Some("yes".to_string()),
            _ => None,
        };
        let m = parse_str(
            "dir = /var/x\nouter { inner = 5\n  block { use_inner: $inner, use_top: $dir } }\nport: $PORT\nhost: $HOSTNAME_X\nflag: $FLAG\nhash: $2a$11$abc\nsame { v = 1, w = $v }",
            Path::new("/cfg/t.conf"),
            &env,
        )
        .unwrap();
        let block = sub(&sub(&m, "outer"), "block");
        assert_eq!(val(&block, "use_inner"), Value::Integer(5));
        assert_eq!(val(&block, "use_top"), s("/var/x"));
        assert_eq!(val(&m, "port"), Value::Integer(9090));
        assert_eq!(val(&m, "host"), s("example.org"));
        assert_eq!(val(&m, "flag"), Value::Bool(true));
        assert_eq!(val(&m, "hash"), s("$2a$11$abc"));
        assert_eq!(val(&sub(&m, "same"), "w"), Value::Integer(1));
        let e = parse_err("a: 1\nb: $MISSING");
        assert_eq!(e.line, 2);
        assert_eq!(
            e.message,
            "variable reference for 'MISSING' can not be found"
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("natsconf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        dir
    }

    #[test]
    fn includes_resolve_relative_to_the_including_file() {
        let dir = temp_dir("inc");
        std::fs::write(
            dir.join("main.conf"),
            "a: 1\ninclude sub/one.conf\nblock {\n  include 'sub/two.conf'\n}\nafter: $from_one\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("sub/one.conf"),
            "from_one: 10\ninclude \"deeper.conf\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("sub/deeper.conf"), "deep: yes\n").unwrap();
        std::fs::write(dir.join("sub/two.conf"), "\n\ntwo: 2\n").unwrap();
        let m = parse_file(&dir.join("main.conf")).unwrap();
        assert_eq!(val(&m, "from_one"), Value::Integer(10));
        assert_eq!(val(&m, "deep"), Value::Bool(true));
        assert_eq!(val(&m, "after"), Value::Integer(10));
        let two = get(&sub(&m, "block"), "two").clone();
        assert_eq!(two.value, Value::Integer(2));
        assert_eq!(
            (two.pos.file.as_ref(), two.pos.line),
            (&dir.join("sub/two.conf"), 3)
        );

        // Errors inside an included file name that file and its line.
        std::fs::write(dir.join("sub/two.conf"), "ok: 1\nbad: \"\\q\"\n").unwrap();
        let e = parse_file(&dir.join("main.conf")).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (dir.join("sub/two.conf"), 2));
        // A missing include is reported at the include line of the including file.
        std::fs::write(dir.join("main.conf"), "a: 1\ninclude nope.conf\n").unwrap();
        let e = parse_file(&dir.join("main.conf")).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (dir.join("main.conf"), 2));
        assert_eq!(
            e.to_string(),
            format!(
                "{}:2: cannot read include file {}: No such file or directory (os error 2)",
                dir.join("main.conf").display(),
                dir.join("nope.conf").display()
            )
        );
        // A missing config file has no line to show: the message names the file.
        for parse in [parse_file, parse_toml_file] {
            let e = parse(&dir.join("absent.conf")).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "cannot read {}: No such file or directory (os error 2)",
                    dir.join("absent.conf").display()
                )
            );
        }
        // Cycles are refused.
        std::fs::write(dir.join("main.conf"), "include sub/loop.conf\n").unwrap();
        std::fs::write(dir.join("sub/loop.conf"), "include ../main.conf\n").unwrap();
        assert!(parse_file(&dir.join("main.conf"))
            .unwrap_err()
            .message
            .contains("cycle"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let m = parse("a: 1\na: 2\nA: 3");
        assert_eq!(val(&m, "a"), Value::Integer(2));
        assert_eq!(m.iter().filter(|(k, _)| k == "a").count(), 1);
        assert_eq!(val(&m, "A"), Value::Integer(3));
    }

    #[test]
    fn syntax_errors_have_lines() {
        for (text, line, needle) in [
            ("a: 1\nb {\n  c: 2\n", 2, "never closed"),
            ("a: 1\n}\n", 2, "unexpected '}'"),
            ("a: [1, 2\n", 1, "never closed"),
            ("a: 1\nb:\n", 2, "expected a value after key 'b'"),
            ("a: 1\nlonely", 2, "expected a value"),
            ("x: (\nline\n", 1, "never closed"),
        ] {
            let e = parse_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn block_strings() {
        let m = parse("text: (\nline one\n  line two\n)\nafter: 1");
        assert_eq!(val(&m, "text"), s("line one\n  line two"));
        assert_eq!(val(&m, "after"), Value::Integer(1));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}1{}", "[".repeat(1000), "]".repeat(1000));
        assert!(parse_err(&text).message.contains("nesting"));
        let text = format!("{}{}", "a {".repeat(500), "}".repeat(500));
        assert!(parse_err(&text).message.contains("nesting"));
    }

    #[test]
    fn random_inputs_never_panic() {
        let alphabet: Vec<char> = "ab:=;,{}[]\"'#/\\$ \n\t0123456789.-kKmMgG()xX\u{e9}"
            .chars()
            .collect();
        let mut seed: u64 = 0x2545F4914F6CDD1D;
        for _ in 0..3000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            for i in 0..len {
                let r = seed.rotate_left(i as u32 * 5);
                text.push(alphabet[(r as usize) % alphabet.len()]);
            }
            let _ = parse_str(&text, Path::new("/x.conf"), &no_env);
            let _ = parse_toml_str(&text, Path::new("/x.toml"));
        }
    }

    #[test]
    fn toml_has_the_same_tree_and_lines() {
        let m = parse_toml_str(
            "operatorjwtpath = \"/op.jwt\"\n\n[http]\nhost = \"0.0.0.0\"\nport = 9090\n[nats]\nservers = [\"nats://a:1\", \"nats://b:2\"]\n[logging]\npid = true\nratio = 1.5\n",
            Path::new("/cfg/nas.toml"),
        )
        .unwrap();
        assert_eq!(val(&m, "operatorjwtpath"), s("/op.jwt"));
        let http = sub(&m, "http");
        assert_eq!(val(&http, "port"), Value::Integer(9090));
        assert_eq!(get(&http, "port").pos.line, 5);
        assert_eq!(get(&m, "http").pos.line, 3);
        let Value::Array(servers) = val(&sub(&m, "nats"), "servers") else {
            panic!()
        };
        assert_eq!(servers.len(), 2);
        assert_eq!(val(&sub(&m, "logging"), "pid"), Value::Bool(true));
        assert_eq!(val(&sub(&m, "logging"), "ratio"), Value::Float(1.5));
        let e = parse_toml_str("a = 1\nb = = 2\n", Path::new("/cfg/nas.toml")).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
