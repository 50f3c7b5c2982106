//! Small value types built once at the edge (parse, don't validate): timestamps, ids, e-mail
//! addresses, page limits and cursors, request ids, and the random tokens behind them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use rand::Rng;
use rand::distr::Alphanumeric;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Defines a closed vocabulary: an enum with its wire names, `ALL`, `as_str`, `Display` and
/// `FromStr` (whose error lists the accepted values).
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!("unknown value `{s}`, expected one of {}", Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                })
            }
        }
    };
}
pub(crate) use vocabulary;

/// The prefixes of every kind of secret OpsIQ issues (API keys, webhook signing secrets). A
/// new kind of secret adds its prefix here, and the secret-leak test looks for it at once.
pub const SECRET_PREFIXES: &[&str] = &["opq_", "whsec_"];

/// `len` random base62 characters from the OS-seeded thread RNG.
pub fn random_base62(len: usize) -> String {
    let mut text = String::with_capacity(len);
    push_random_base62(&mut text, len);
    text
}

/// Appends `len` random base62 characters to `text`.
fn push_random_base62(text: &mut String, len: usize) {
    text.extend(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from),
    );
}

/// `len` (at least 10) base62 characters that sort by creation time: the unix milliseconds of
/// `at` in 9 characters (digits, then upper-case, then lower-case letters, the order of their
/// bytes), then random ones. Ids made this way are appended at the end of a unique index
/// instead of landing on a random page of it, so a batch of inserts dirties (and writes to the
/// WAL) a page or two of the index rather than a page per row.
pub fn sortable_base62(at: Timestamp, len: usize) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const TIME_DIGITS: usize = 9;
    let mut out = String::with_capacity(len);
    let mut millis = at.0.max(0) as u64;
    let mut time = [b'0'; TIME_DIGITS];
    for digit in time.iter_mut().rev() {
        *digit = DIGITS[(millis % 62) as usize];
        millis /= 62;
    }
    out.extend(time.iter().map(|&b| char::from(b)));
    out.push_str(&random_base62(len.saturating_sub(TIME_DIGITS)));
    out
}

/// A point in time, stored as unix milliseconds and written as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-05-25T12:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        self.with_rfc3339(str::to_owned)
    }

    /// Hands the RFC 3339 text to `f`: from a stack buffer for years 0 to 9999, from the
    /// general formatter otherwise.
    fn with_rfc3339<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self.rfc3339_bytes() {
            // The buffer holds ASCII digits and separators only.
            Some(bytes) => f(std::str::from_utf8(&bytes).unwrap_or_default()),
            None => f(&self.to_rfc3339_any_year()),
        }
    }

    /// The RFC 3339 text of a timestamp in years 0 to 9999, written digit by digit (every
    /// timestamp of every answer goes through here).
    fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()?;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, u32::from(u8::from(t.month())));
        put(8, 2, u32::from(t.day()));
        put(11, 2, u32::from(t.hour()));
        put(14, 2, u32::from(t.minute()));
        put(17, 2, u32::from(t.second()));
        put(20, 3, u32::from(t.millisecond()));
        Some(out)
    }

    fn to_rfc3339_any_year(self) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(FORMAT).ok())
            .unwrap_or_default()
    }

    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp: {e}"))?;
        Ok(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|text| s.serialize_str(text))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time", "description": "RFC 3339 timestamp in UTC"})
    }
}

/// Accepts an integer either as a JSON number or as a string of digits (query and path
/// parameters arrive as strings; the action endpoint sends numbers).
fn deserialize_integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct IntVisitor;
    impl Visitor<'_> for IntVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            // JSON Schema counts 5.0 as an integer; so do we, when it is one exactly.
            if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("expected an integer, got {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| E::custom(format!("expected an integer, got `{v}`")))
        }
    }
    d.deserialize_any(IntVisitor)
}

/// For `#[serde(deserialize_with = "patch")]` on an `Option<Option<T>>` field: tells an
/// absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn patch<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The input of an action that takes no parameters.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A positive row id (contacts, tickets, departments, agents, workspaces, sites, keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(pub i64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = deserialize_integer(d)?;
        if v < 1 {
            return Err(de::Error::custom(format!(
                "ids are positive integers, got {v}"
            )));
        }
        Ok(Id(v))
    }
}

impl JsonSchema for Id {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "format": "int64", "minimum": 1})
    }
}

/// A page size: 1 to 100, 25 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 100;
    pub const DEFAULT: u32 = 25;

    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=i64::from(Self::MAX)).contains(&n) {
            Ok(Limit(n as u32))
        } else {
            Err(format!("must be between 1 and {}, got {n}", Self::MAX))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(Self::DEFAULT)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Limit::new(deserialize_integer(d)?).map_err(de::Error::custom)
    }
}

impl JsonSchema for Limit {
    fn schema_name() -> Cow<'static, str> {
        "Limit".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1, "maximum": 100, "default": 25})
    }
}

/// An opaque position in a list: pass a page's `next_cursor` back to get the next page.
///
/// Lists are ordered newest first; the cursor holds the last id returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub i64);

impl Cursor {
    const PREFIX: &'static str = "c1_";

    pub fn encode(self) -> String {
        format!("{}{}", Self::PREFIX, self.0)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .map(Cursor)
            .ok_or_else(|| de::Error::custom(format!("`{s}` is not a cursor returned by this API")))
    }
}

impl JsonSchema for Cursor {
    fn schema_name() -> Cow<'static, str> {
        "Cursor".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^c1_[1-9][0-9]{0,17}$",
            "description": "The `next_cursor` of the previous page."
        })
    }
}

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first: the extra row only says
    /// that another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: Limit, id_of: impl Fn(&T) -> i64) -> Self {
        let limit = limit.get() as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor(id_of(last)).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// A record as the JSON text of its answer, written into a response as it is. The text is, byte
/// for byte, what serialising the `T` gives: a store either keeps it rendered beside the
/// record's columns (the SQLite store does, see its migration 0011) or renders it with
/// [`Doc::render`].
///
/// The records of a page may share one text, each a range of it ([`Doc::stored_in`]): a page
/// read from a store is then one allocation, not one for every record. Read into a
/// [`PageText`], they are also the page's JSON array as it is, which [`Doc::join`] hands on
/// without copying it.
pub struct Doc<T> {
    id: Id,
    text: Arc<String>,
    range: Range<usize>,
    of: PhantomData<fn() -> T>,
}

impl<T> Doc<T> {
    /// A record's stored rendering. The caller vouches that `json` is what serialising the
    /// record gives: it goes into answers unchecked.
    pub fn stored(id: Id, json: String) -> Self {
        let range = 0..json.len();
        Doc {
            id,
            text: Arc::new(json),
            range,
            of: PhantomData,
        }
    }

    /// A record's stored rendering, `text[range]`, as [`Doc::stored`] vouches for it.
    ///
    /// # Panics
    /// When `range` is not a range of `text` on character boundaries.
    pub fn stored_in(id: Id, text: &Arc<String>, range: Range<usize>) -> Self {
        assert!(
            text.get(range.clone()).is_some(),
            "{range:?} is not a range of the text"
        );
        Doc {
            id,
            text: text.clone(),
            range,
            of: PhantomData,
        }
    }

    pub fn id(&self) -> Id {
        self.id
    }

    pub fn json(&self) -> &str {
        &self.text[self.range.clone()]
    }

    pub fn into_json(self) -> String {
        if self.range == (0..self.text.len()) {
            Arc::unwrap_or_clone(self.text)
        } else {
            self.json().to_string()
        }
    }
}

/// Bytes a [`PageText`] leaves in front of its array: room for an answer to write what comes
/// before the page (the API's envelope opens with exactly as many, `{"success":true,"data":`),
/// so that the answer is written around the records where they lie.
pub const HEADROOM: usize = 23;

/// The text a page of records is read into, which their [`Doc`]s share: [`HEADROOM`] spaces,
/// then the records as the page's JSON array, unclosed (`[a,b,c`). [`Doc::join`] closes it
/// after the page's last record.
#[derive(Debug, Default)]
pub struct PageText(String);

impl PageText {
    pub fn new() -> Self {
        PageText::default()
    }

    /// Makes room, at once, for `records` records of about `each` bytes and what an answer
    /// adds around them (at most 1 MiB is reserved ahead).
    pub fn reserve(&mut self, each: usize, records: usize) {
        let room = each
            .saturating_add(1)
            .saturating_mul(records)
            .saturating_add(HEADROOM + 256)
            .min(1 << 20);
        self.0.reserve(room.saturating_sub(self.0.len()));
    }

    /// Appends a record's JSON text; answers where it lies, for [`Doc::stored_in`].
    pub fn push(&mut self, json: &str) -> Range<usize> {
        if self.0.is_empty() {
            self.0.extend(std::iter::repeat_n(' ', HEADROOM));
            self.0.push('[');
        } else {
            self.0.push(',');
        }
        let start = self.0.len();
        self.0.push_str(json);
        start..self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(self) -> Arc<String> {
        Arc::new(self.0)
    }
}

/// A page's records as one JSON array: `text[headroom..]`; the `headroom` bytes in front are
/// free for the answer to write into (see [`HEADROOM`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub text: String,
    pub headroom: usize,
}

impl<T> Doc<T> {
    /// The records as one JSON array. When they are the records of one [`PageText`], in order
    /// and held nowhere else, the array is that text, closed after the last of them: nothing is
    /// copied. Otherwise their texts are copied into a new one.
    pub fn join(docs: Vec<Doc<T>>) -> Joined {
        if let Some(text) = Doc::laid_out(&docs) {
            let end = docs.last().map_or(0, |d| d.range.end);
            drop(docs);
            return match Arc::try_unwrap(text) {
                Ok(mut text) => {
                    text.truncate(end);
                    text.push(']');
                    Joined {
                        text,
                        headroom: HEADROOM,
                    }
                }
                // Not reached: nothing but the docs held the text.
                Err(shared) => Joined {
                    text: format!("{}]", &shared[HEADROOM..end]),
                    headroom: 0,
                },
            };
        }
        let size: usize = docs.iter().map(|d| d.range.len() + 1).sum();
        let mut text = String::with_capacity(size + 1);
        text.push('[');
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(doc.json());
        }
        text.push(']');
        Joined { text, headroom: 0 }
    }

    /// The text of `docs` when it is a [`PageText`] holding them, in order, and nothing holds
    /// it but them.
    fn laid_out(docs: &[Doc<T>]) -> Option<Arc<String>> {
        let first = docs.first()?;
        let text = &first.text;
        let bytes = text.as_bytes();
        let in_place = first.range.start == HEADROOM + 1
            && bytes.get(HEADROOM) == Some(&b'[')
            && docs.windows(2).all(|pair| {
                pair[1].range.start == pair[0].range.end + 1
                    && bytes.get(pair[0].range.end) == Some(&b',')
            })
            && docs.iter().all(|d| Arc::ptr_eq(&d.text, text))
            && Arc::strong_count(text) == docs.len()
            && Arc::weak_count(text) == 0;
        in_place.then(|| text.clone())
    }
}

impl<T> Clone for Doc<T> {
    fn clone(&self) -> Self {
        Doc {
            id: self.id,
            text: self.text.clone(),
            range: self.range.clone(),
            of: PhantomData,
        }
    }
}

impl<T> PartialEq for Doc<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.json() == other.json()
    }
}

impl<T> fmt::Debug for Doc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doc")
            .field("id", &self.id)
            .field("json", &self.json())
            .finish()
    }
}

impl<T: Serialize> Doc<T> {
    /// Renders a record.
    pub fn render(id: Id, record: &T) -> serde_json::Result<Self> {
        Ok(Doc::stored(id, serde_json::to_string(record)?))
    }
}

impl<T: de::DeserializeOwned> Doc<T> {
    /// The typed record back.
    pub fn parse(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.json())
    }
}

/// A syntactically valid e-mail address, trimmed; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let invalid = |why: &str| Err(format!("`{raw}` is not a valid e-mail address: {why}"));
        if s.is_empty() {
            return invalid("it is empty");
        }
        if s.len() > 254 {
            return invalid("it is longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return invalid("it has no `@`");
        };
        if local.is_empty() || local.len() > 64 {
            return invalid("the part before `@` must have 1 to 64 characters");
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>')
            || local.contains('@')
        {
            return invalid("it contains a character not allowed in an address");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return invalid("the domain must look like `example.com`");
        }
        Ok(Email(s.to_string()))
    }

    /// An address the store wrote after [`Email::parse`] checked it.
    pub(crate) fn stored(checked: &str) -> Self {
        Email(checked.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and lookups.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(de::Error::custom)
    }
}

impl JsonSchema for Email {
    fn schema_name() -> Cow<'static, str> {
        "Email".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "email", "maxLength": 254})
    }
}

/// A string with at least one character that is not Unicode `White_Space` (what `str::trim`
/// removes), as an ECMA-262 pattern for JSON Schema.
pub const NON_BLANK: &str = "[^\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

/// Checks a free-text field's length as sent (in characters), then trims it; `required`
/// rejects a blank value. `field` names the field in errors.
pub fn text(field: &str, value: &str, max: usize, required: bool) -> crate::Result<String> {
    if value.chars().count() > max {
        return Err(crate::Error::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let v = value.trim();
    if required && v.is_empty() {
        return Err(crate::Error::validation(field, "must not be blank"));
    }
    Ok(v.to_string())
}

/// Free text that is not blank and has at most `MAX` characters as sent; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > MAX {
            return Err(format!("must be at most {MAX} characters"));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be blank".into());
        }
        Ok(Text(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> AsRef<str> for Text<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Text::parse(&raw).map_err(de::Error::custom)
    }
}

impl<const MAX: usize> JsonSchema for Text<MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Text{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "maxLength": MAX, "pattern": NON_BLANK})
    }
}

/// One tag as sent: not blank, at most 64 characters.
pub type Tag = Text<64>;

/// The most tags a record holds.
pub const MAX_TAGS: usize = 100;

/// Merges tags into a record's list: each checked as a [`Tag`], lower-cased, deduplicated
/// with the first occurrence's order kept, at most [`MAX_TAGS`].
pub fn clean_tags<T: AsRef<str>>(
    field: &str,
    existing: &[String],
    new: &[T],
) -> crate::Result<Vec<String>> {
    if new.len() > MAX_TAGS {
        return Err(crate::Error::validation(
            field,
            format!("give at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = existing.to_vec();
    for tag in new {
        let tag = Tag::parse(tag.as_ref())
            .map_err(|e| crate::Error::validation(field, format!("tag `{}` {e}", tag.as_ref())))?;
        let t = tag.as_str().to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(crate::Error::validation(
            field,
            format!("a record holds at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

/// A request id, `req_` and 24 base62 characters, given to every API response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn generate() -> Self {
        // One allocation of the id's size, rather than the random part's and then the whole.
        let mut id = String::with_capacity(Self::PREFIX.len() + Self::RANDOM);
        id.push_str(Self::PREFIX);
        push_random_base62(&mut id, Self::RANDOM);
        RequestId(id)
    }

    const PREFIX: &str = "req_";
    const RANDOM: usize = 24;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_req_and_24_base62_characters_each_time_new() {
        let ids: Vec<RequestId> = (0..100).map(|_| RequestId::generate()).collect();
        for id in &ids {
            let random = id.as_str().strip_prefix("req_").expect("the prefix");
            assert_eq!(random.len(), 24, "{id}");
            assert!(random.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        let distinct: std::collections::HashSet<&str> = ids.iter().map(RequestId::as_str).collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn docs_of_a_page_share_one_text() {
        let text = Arc::new(r#"{"id":1}{"id":22}"#.to_string());
        let first: Doc<()> = Doc::stored_in(Id(1), &text, 0..8);
        let second: Doc<()> = Doc::stored_in(Id(22), &text, 8..17);
        assert_eq!(
            (first.json(), second.json()),
            (r#"{"id":1}"#, r#"{"id":22}"#)
        );
        // Equal by what they say, wherever their text lies.
        assert_eq!(second, Doc::stored(Id(22), r#"{"id":22}"#.to_string()));
        assert_ne!(first, Doc::stored(Id(2), r#"{"id":1}"#.to_string()));
        assert_eq!(
            format!("{first:?}"),
            r#"Doc { id: Id(1), json: "{\"id\":1}" }"#
        );
        assert_eq!(second.clone().into_json(), r#"{"id":22}"#);
        let whole: Doc<()> = Doc::stored(Id(3), "[3]".to_string());
        assert_eq!(whole.into_json(), "[3]");
        let outside = std::panic::catch_unwind(|| Doc::<()>::stored_in(Id(1), &text, 8..18));
        assert!(outside.is_err());
    }

    /// The docs of a page read into a [`PageText`], as a store reads them.
    fn page_of(records: &[&str]) -> (Vec<Doc<()>>, *const u8) {
        let mut text = PageText::new();
        text.reserve(16, records.len());
        let ranges: Vec<_> = records.iter().map(|r| text.push(r)).collect();
        let text = text.finish();
        let docs = ranges
            .into_iter()
            .enumerate()
            .map(|(i, range)| Doc::stored_in(Id(i as i64 + 1), &text, range))
            .collect();
        (docs, text.as_ptr())
    }

    #[test]
    fn a_page_read_into_one_text_is_its_array_without_a_copy() {
        let (mut docs, at) = page_of(&[r#"{"id":1}"#, r#"{"id":2}"#, r#"{"id":3}"#]);
        assert_eq!(docs[1].json(), r#"{"id":2}"#);
        // The extra record that only told of a next page is let go first.
        docs.truncate(2);
        let joined = Doc::join(docs);
        assert_eq!(&joined.text[joined.headroom..], r#"[{"id":1},{"id":2}]"#);
        assert_eq!(joined.headroom, HEADROOM);
        assert!(joined.text[..HEADROOM].bytes().all(|b| b == b' '));
        assert_eq!(joined.text.as_ptr(), at, "the page's own text, not a copy");
    }

    #[test]
    fn docs_not_laid_out_as_one_page_are_joined_by_copy() {
        let array = |docs: Vec<Doc<()>>| {
            let joined = Doc::join(docs);
            (joined.text[joined.headroom..].to_string(), joined.headroom)
        };
        // A record held elsewhere too: the text is not the page's to close.
        let (docs, _) = page_of(&["1", "2"]);
        let kept = docs[0].clone();
        assert_eq!(array(docs), ("[1,2]".to_string(), 0));
        assert_eq!(kept.json(), "1");
        // Out of order, or with a record left out between.
        let (mut docs, _) = page_of(&["1", "2", "3"]);
        docs.swap(0, 1);
        assert_eq!(array(docs), ("[2,1,3]".to_string(), 0));
        let (mut docs, _) = page_of(&["1", "2", "3"]);
        docs.remove(1);
        assert_eq!(array(docs), ("[1,3]".to_string(), 0));
        // Records of their own texts, and none.
        let own = vec![Doc::<()>::stored(Id(1), "[1]".into())];
        assert_eq!(array(own), ("[[1]]".to_string(), 0));
        assert_eq!(array(Vec::new()), ("[]".to_string(), 0));
    }

    #[test]
    fn sortable_ids_sort_by_time_and_keep_their_length() {
        let times = [
            0,
            1,
            61,
            62,
            1_764_000_000_000,
            1_764_000_000_001,
            253_402_300_799_999,
        ];
        let ids: Vec<String> = times
            .iter()
            .map(|&t| sortable_base62(Timestamp(t), 24))
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 24);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        for pair in ids.windows(2) {
            assert!(pair[0][..9] < pair[1][..9], "{} !< {}", pair[0], pair[1]);
        }
        // The random part still tells apart ids of the same millisecond.
        let (a, b) = (
            sortable_base62(Timestamp(5), 24),
            sortable_base62(Timestamp(5), 24),
        );
        assert_eq!(a[..9], b[..9]);
        assert_ne!(a, b);
    }

    #[test]
    fn timestamps_format_as_the_time_crate_does() {
        let mut samples = vec![
            0,
            -1,
            1_000,
            1_764_000_000_123,
            -62_167_219_200_000,   // 0000-01-01
            253_402_300_799_999,   // 9999-12-31T23:59:59.999
            253_402_300_800_000,   // 10000-01-01: the general formatter
            951_782_400_000 + 999, // 2000-02-29
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 400_000_000_000_000) as i64 - 100_000_000_000_000);
        }
        for millis in samples {
            let t = Timestamp(millis);
            assert_eq!(t.to_rfc3339(), t.to_rfc3339_any_year(), "{millis}");
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.to_rfc3339_any_year())
            );
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("ada@example.com").is_ok());
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().normalized(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa_mple.com",
            "ada@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn limits_accept_numbers_and_digit_strings_in_range() {
        let ok: Limit = serde_json::from_value(serde_json::json!("50")).unwrap();
        assert_eq!(ok.get(), 50);
        for bad in [
            serde_json::json!(0),
            serde_json::json!("abc"),
            serde_json::json!(101),
            serde_json::json!(2.5),
        ] {
            assert!(
                serde_json::from_value::<Limit>(bad.clone()).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_foreign_strings() {
        let c: Cursor = serde_json::from_value(serde_json::json!(Cursor(42).encode())).unwrap();
        assert_eq!(c, Cursor(42));
        assert!(serde_json::from_value::<Cursor>(serde_json::json!("42")).is_err());
    }

    #[test]
    fn tags_are_deduplicated_in_order() {
        let tags = clean_tags("tags", &["vip".into()], &["Renewal", " vip ", "renewal"]).unwrap();
        assert_eq!(tags, vec!["vip", "renewal"]);
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-05-25T12:00:00.25+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-05-25T10:00:00.250Z"
        );
    }
}
