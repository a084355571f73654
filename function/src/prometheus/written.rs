//! A reader for the one way Prometheus writes a successful instant vector.
//!
//! Prometheus writes its answers in a single form: no spaces, the envelope's fields in one
//! order, every label set sorted. A large answer is almost all samples, and reading each
//! through a general JSON parser costs most of the time of a run that reads 100,000 series.
//! This reader takes a body only when all of it is in that form, strictly a subset of JSON,
//! and reads it in one pass over its bytes:
//!
//! ```text
//! {"status":"success","data":{"resultType":"vector","result":[SAMPLE,...]}}
//! SAMPLE = {"metric":{"NAME":"VALUE",...},"value":[TIMESTAMP,"NUMBER"]}
//! ```
//!
//! with names in strictly ascending order, strings without escapes or control characters,
//! the timestamp digits with an optional fraction, and the value a number as Prometheus
//! writes it. Anything else (spaces, escapes, other fields, warnings, a histogram, a value
//! that does not read as a number) is declined as a whole, and serde_json reads the body and
//! words any error: this reader never refuses a body, and reads the same figures from one as
//! serde_json would.

use super::{sample_value, SeriesTable};

const HEAD: &[u8; 60] = br#"{"status":"success","data":{"resultType":"vector","result":["#;
const TAIL: &[u8; 3] = b"]}}";

/// The series of `body` if all of it is written in Prometheus's form.
pub(super) fn read_vector(body: &str) -> Option<SeriesTable<'_>> {
    let mut reader = Reader {
        body,
        bytes: body.as_bytes(),
        at: 0,
    };
    reader.literal(HEAD)?;
    let mut table = SeriesTable::sized_for(body);
    // Prometheus stamps every sample of an answer alike: a stamp is read as a number only when
    // its text differs from the one before.
    let mut last_stamp = "";
    if reader.bytes[reader.at..].first_chunk() != Some(TAIL) {
        loop {
            let (key, (stamp_start, stamp_end), value) = reader.sample()?;
            let stamp = &body[stamp_start..stamp_end];
            if stamp != last_stamp {
                table.stamp(stamp.parse().ok()?);
                last_stamp = stamp;
            }
            table.add_written(key, value);
            if !reader.eat(b',') {
                break;
            }
        }
    }
    reader.literal(TAIL)?;
    let rest = &reader.bytes[reader.at..];
    // The whitespace JSON allows after a value.
    rest.iter()
        .all(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        .then_some(table)
}

/// Where a piece of the body lies: `start..end`.
type Span = (usize, usize);

struct Reader<'a> {
    body: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn literal<const N: usize>(&mut self, text: &[u8; N]) -> Option<()> {
        (self.bytes[self.at..].first_chunk::<N>() == Some(text)).then(|| {
            self.at += N;
        })
    }

    fn eat(&mut self, byte: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&byte);
        self.at += usize::from(next);
        next
    }

    /// One sample: where its label set's key lies, where its stamp lies, and its value.
    fn sample(&mut self) -> Option<(Span, Span, f64)> {
        self.literal(br#"{"metric":{"#)?;
        let key = self.members()?;
        self.literal(br#","value":["#)?;
        let stamp = self.timestamp()?;
        self.literal(br#",""#)?;
        let (start, end) = self.string_rest()?;
        let value = sample_value(&self.body[start..end]).ok()?;
        self.literal(b"]}")?;
        Some((key, stamp, value))
    }

    /// A label set after its `{`, up to and with its `}`: where its members lie, which are
    /// its key as [`super::canonical_key`] writes it.
    fn members(&mut self) -> Option<Span> {
        let start = self.at;
        if self.eat(b'}') {
            return Some((start, start));
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            self.literal(b"\"")?;
            let (name_start, name_end) = self.string_rest()?;
            let name = &self.bytes[name_start..name_end];
            if previous >= Some(name) {
                return None;
            }
            previous = Some(name);
            self.literal(b":\"")?;
            self.string_rest()?;
            let end = self.at;
            if self.eat(b'}') {
                return Some((start, end));
            }
            self.literal(b",")?;
        }
    }

    /// The rest of a string whose opening quote has been read, with its closing quote: where
    /// its text lies. A string with an escape or a control character is declined.
    fn string_rest(&mut self) -> Option<Span> {
        let start = self.at;
        let end = next_special(self.bytes, start)?;
        (self.bytes[end] == b'"').then(|| {
            self.at = end + 1;
            (start, end)
        })
    }

    /// Seconds as Prometheus writes them: digits, then an optional fraction; where they lie.
    /// Short enough that any JSON reader takes them as a finite number.
    fn timestamp(&mut self) -> Option<Span> {
        let start = self.at;
        let whole = self.digits();
        if whole == 0 || whole > MAX_DIGITS || (whole > 1 && self.bytes[self.at - whole] == b'0') {
            return None;
        }
        if self.eat(b'.') && !(1..=MAX_DIGITS).contains(&self.digits()) {
            return None;
        }
        Some((start, self.at))
    }

    fn digits(&mut self) -> usize {
        let count = self.bytes[self.at..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        self.at += count;
        count
    }
}

/// Digits in a timestamp's whole part or fraction (Prometheus writes ten and three).
const MAX_DIGITS: usize = 18;

/// Where the first byte at or after `from` is one that a string cannot hold as it is: a
/// quote, a backslash or a control character.
///
/// Eight bytes are tested at a time: a byte equal to `b` leaves a zero byte in `word ^ b`,
/// and subtracting one from every byte of a word borrows into the top bit of just those bytes
/// that were zero, or below `0x20` when `0x20` is subtracted, as long as the byte's own top
/// bit was clear. A borrow can only mark a byte falsely above one marked truly, so the lowest
/// mark is the first such byte.
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const TOPS: u64 = ONES * 0x80;
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_le_bytes(*chunk);
        let marks = (zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')))
            | word.wrapping_sub(ONES * 0x20) & !word)
            & TOPS;
        if marks != 0 {
            return Some(at + marks.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    rest.iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|offset| at + offset)
}
