//! Input generation: random bytes, seeds, and seeds mutated the way parsers break.

/// SplitMix64: small, fast, deterministic from its seed. Not for secrets.
///
/// ```
/// let (mut a, mut b) = (nucleus_fuzz::Rng::new(1), nucleus_fuzz::Rng::new(1));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers parsers get wrong: zero, signs, the edges of every integer width, floats out of
/// range.
const EXTREMES: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "1e308",
    "1e309",
    "-1e309",
    "0.0000000001",
    "1.5",
    "0x10",
    "nan",
    "inf",
    "-inf",
];

/// Tokens of TOML and JSON, and values the parsers of nucleus care about.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "=",
    ":",
    ",",
    "\n",
    "\r\n",
    "#",
    "[[",
    "]]",
    ".",
    "\\",
    "\\u0000",
    "\\uD800",
    "\\\"",
    "true",
    "false",
    "null",
    "\0",
    "\u{feff}",
    "1979-05-27T07:32:00Z",
    "/",
    "..",
    "../",
    "/proc",
    "CAP_SYS_ADMIN",
    "SCMP_ACT_ALLOW",
    "SCMP_CMP_MASKED_EQ",
    "ms",
    "us",
    "s",
    "h",
    "K",
    "M",
    "G",
    "T",
    "KiB",
    "\u{1F600}",
    "\u{0301}",
    " ",
    "\t",
];

/// What deep nesting is made of.
const OPENERS: &[&str] = &[
    "[", "{\"a\":", "{", "a = [", "[a.", "x.", "[[a]]\n", "\"", "-",
];

/// Makes inputs: [`Mutator::next`] draws random bytes, a seed, or a seed mutated 1 to 8
/// times (byte flips, inserted, deleted and duplicated ranges, splices of two inputs,
/// numbers replaced by extremes, tokens, deep nesting, huge strings).
///
/// ```
/// let mut m = nucleus_fuzz::Mutator::new(7, 4096);
/// let seeds = vec![b"keep = [\"CAP_CHOWN\"]".to_vec()];
/// let input = m.next(&seeds);
/// assert!(input.len() <= 4096);
/// ```
#[derive(Clone, Debug)]
pub struct Mutator {
    rng: Rng,
    max_len: usize,
}

impl Mutator {
    /// A mutator seeded with `seed` whose inputs are at most `max_len` bytes.
    pub fn new(seed: u64, max_len: usize) -> Mutator {
        Mutator {
            rng: Rng::new(seed),
            max_len,
        }
    }

    /// The generator, for the driver's own choices.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The next input, from `pool` (seeds and inputs accepted so far).
    pub fn next(&mut self, pool: &[Vec<u8>]) -> Vec<u8> {
        if pool.is_empty() || self.rng.chance(5) {
            return self.random();
        }
        let mut input = self.rng.pick(pool).clone();
        if !self.rng.chance(2) {
            for _ in 0..1 + self.rng.below(8) {
                self.mutate(&mut input, pool);
            }
        }
        input.truncate(self.max_len);
        input
    }

    /// Random bytes: any byte, or the characters of TOML and JSON.
    fn random(&mut self) -> Vec<u8> {
        const ALPHABET: &[u8] = b"[]{}\"'=:,.#\n -_0123456789abcdefnrstu/\\";
        let len = self.rng.below(256);
        let structured = self.rng.chance(50);
        (0..len)
            .map(|_| {
                if structured {
                    *self.rng.pick(ALPHABET)
                } else {
                    self.rng.next_u64() as u8
                }
            })
            .collect()
    }

    /// Applies one mutation to `input` (a splice takes its tail from `pool`).
    pub fn mutate(&mut self, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        let len = input.len();
        let at = self.rng.below(len + 1);
        match self.rng.below(12) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << self.rng.below(8),
            1 if len > 0 => input[at.min(len - 1)] = self.rng.next_u64() as u8,
            2 => {
                let bytes: Vec<u8> = (0..1 + self.rng.below(16))
                    .map(|_| self.rng.next_u64() as u8)
                    .collect();
                input.splice(at..at, bytes);
            }
            3 => {
                let end = (at + 1 + self.rng.below(64)).min(len);
                input.drain(at..end);
            }
            4 => {
                let end = (at + 1 + self.rng.below(256)).min(len);
                let range = input[at..end].to_vec();
                let to = self.rng.below(len + 1);
                input.splice(to..to, range);
            }
            5 => {
                let other = self.rng.pick(pool);
                let from = self.rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            6 => self.replace_number(input),
            7 => {
                let token = self.rng.pick(TOKENS).as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            8 => {
                let unit = self.rng.pick(OPENERS).as_bytes();
                let depth = 1 << self.rng.below(15);
                let nest: Vec<u8> = unit
                    .iter()
                    .copied()
                    .cycle()
                    .take(unit.len() * depth)
                    .collect();
                input.splice(at..at, nest);
            }
            9 => {
                let byte = *self.rng.pick(b"a0 \\\"\n[\xff");
                let n = 1 << self.rng.below(17);
                input.splice(at..at, std::iter::repeat_n(byte, n));
            }
            10 => input.truncate(at),
            _ => self.replace_quoted(input, at),
        }
    }

    /// Replaces a run of digits (with its sign) by an extreme number.
    fn replace_number(&mut self, input: &mut Vec<u8>) {
        let digits: Vec<usize> = (0..input.len())
            .filter(|&i| input[i].is_ascii_digit())
            .collect();
        let Some(&i) = (!digits.is_empty()).then(|| self.rng.pick(&digits)) else {
            return;
        };
        let mut start = i;
        while start > 0 && (input[start - 1].is_ascii_digit() || input[start - 1] == b'-') {
            start -= 1;
        }
        let mut end = i;
        while end < input.len() && (input[end].is_ascii_digit() || input[end] == b'.') {
            end += 1;
        }
        let with = self.rng.pick(EXTREMES).as_bytes();
        input.splice(start..end, with.iter().copied());
    }

    /// Replaces the text of a quoted string (the first quote at or after `at`) by a token or
    /// an extreme.
    fn replace_quoted(&mut self, input: &mut Vec<u8>, at: usize) {
        let Some(open) = input[at..]
            .iter()
            .position(|&b| b == b'"')
            .map(|p| p + at + 1)
        else {
            return;
        };
        let Some(close) = input[open..]
            .iter()
            .position(|&b| b == b'"')
            .map(|p| p + open)
        else {
            return;
        };
        let with = if self.rng.chance(50) {
            self.rng.pick(TOKENS)
        } else {
            self.rng.pick(EXTREMES)
        };
        input.splice(open..close, with.bytes());
    }
}
