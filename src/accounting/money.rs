//! Exact money: decimal strings parsed into integers, costs computed as exact fractions and
//! rounded once, half to even, to integer nano-units of the currency. No floats anywhere.
//!
//! A price such as `"1.25"` (per million tokens) becomes `Decimal { units: 125, scale: 2 }`.
//! A cost is a sum of products of counts (tokens, ns, bytes) and such decimals, divided by a
//! constant (10^scale, a million tokens, an hour, a GB-month); it is kept as a 256-bit
//! numerator over a 128-bit denominator until the one rounding step, so a result is exact
//! whatever the magnitudes, or an error when it cannot fit 128 bits (never a wrong number).

use std::fmt;

/// Most digits accepted after the decimal point.
pub const MAX_SCALE: u32 = 18;
/// Most digits accepted before the decimal point.
pub const MAX_INTEGER_DIGITS: usize = 15;
/// Nano-units per unit of currency.
pub const NANOS_PER_UNIT: u128 = 1_000_000_000;

/// A non-negative decimal number, exactly `units / 10^scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub units: u128,
    pub scale: u32,
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// Parses `"12"`, `"1.25"`, `"0.000125"`: ASCII digits with at most one `.`; no sign,
    /// exponent, separators or spaces. The error is a sentence fragment naming the text.
    pub fn parse(text: &str) -> Result<Decimal, String> {
        let bad = |why: &str| format!("{text:?} is not a decimal amount: {why}");
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(if text.starts_with('-') {
                "amounts cannot be negative"
            } else {
                "write digits with an optional decimal point, e.g. \"1.25\""
            }));
        }
        let frac = frac.unwrap_or("");
        if text.contains('.') && frac.is_empty() {
            return Err(bad("digits must follow the decimal point"));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "write digits with an optional decimal point, e.g. \"1.25\"",
            ));
        }
        if int.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(bad(&format!(
                "more than {MAX_INTEGER_DIGITS} digits before the decimal point"
            )));
        }
        if frac.len() > MAX_SCALE as usize {
            return Err(bad(&format!(
                "more than {MAX_SCALE} digits after the decimal point"
            )));
        }
        let mut units: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            // At most 15 + 18 digits: always fits u128.
            units = units * 10 + u128::from(b - b'0');
        }
        Ok(Decimal {
            units,
            scale: frac.len() as u32,
        })
    }

    /// The units of this amount at a (larger or equal) `scale`.
    pub fn units_at(self, scale: u32) -> u128 {
        debug_assert!(scale >= self.scale && scale <= MAX_SCALE);
        self.units * pow10(scale - self.scale)
    }

    pub fn is_zero(self) -> bool {
        self.units == 0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = pow10(self.scale);
        let (i, r) = (self.units / p, self.units % p);
        if self.scale == 0 {
            write!(f, "{i}")
        } else {
            write!(f, "{i}.{r:0width$}", width = self.scale as usize)
        }
    }
}

/// `10^n` for `n <= 38`.
pub fn pow10(n: u32) -> u128 {
    10u128.pow(n)
}

/// An unsigned 256-bit integer: just enough arithmetic for exact costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct U256 {
    pub hi: u128,
    pub lo: u128,
}

impl U256 {
    pub const ZERO: U256 = U256 { hi: 0, lo: 0 };

    pub fn from_u128(v: u128) -> U256 {
        U256 { hi: 0, lo: v }
    }

    /// The full product of two 128-bit integers.
    pub fn mul(a: u128, b: u128) -> U256 {
        const M: u128 = u64::MAX as u128;
        let (a1, a0) = (a >> 64, a & M);
        let (b1, b0) = (b >> 64, b & M);
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        // middle = p01 + p10 + (p00 >> 64), with its carry into bit 128.
        let (mid, c1) = p01.overflowing_add(p10);
        let (mid, c2) = mid.overflowing_add(p00 >> 64);
        let carry = (u128::from(c1) + u128::from(c2)) << 64;
        let lo = (mid << 64) | (p00 & M);
        let hi = p11 + (mid >> 64) + carry;
        U256 { hi, lo }
    }

    /// `self + other`, or `None` past 2^256.
    pub fn checked_add(self, other: U256) -> Option<U256> {
        let (lo, c) = self.lo.overflowing_add(other.lo);
        let hi = self.hi.checked_add(other.hi)?.checked_add(u128::from(c))?;
        Some(U256 { hi, lo })
    }

    /// `self * m`, or `None` past 2^256.
    pub fn checked_mul_u128(self, m: u128) -> Option<U256> {
        let lo = U256::mul(self.lo, m);
        let hi = U256::mul(self.hi, m);
        if hi.hi != 0 {
            return None;
        }
        U256 { hi: hi.lo, lo: 0 }.checked_add(lo)
    }

    /// Quotient and remainder by `d` (> 0), or `None` when the quotient needs more than
    /// 128 bits.
    pub fn div_rem(self, d: u128) -> Option<(u128, u128)> {
        assert!(d > 0, "division by zero");
        if self.hi == 0 {
            return Some((self.lo / d, self.lo % d));
        }
        if self.hi >= d {
            return None;
        }
        // Long division of the low 128 bits, the high half being the initial remainder.
        let mut rem = self.hi;
        let mut q: u128 = 0;
        for i in (0..128).rev() {
            let top = rem >> 127;
            rem = (rem << 1) | ((self.lo >> i) & 1);
            q <<= 1;
            if top == 1 || rem >= d {
                rem = rem.wrapping_sub(d);
                q |= 1;
            }
        }
        Some((q, rem))
    }

    /// `round(self / d)`, half to even; `None` when it needs more than 128 bits.
    pub fn div_round_half_even(self, d: u128) -> Option<u128> {
        let (q, r) = self.div_rem(d)?;
        let up = match r.cmp(&(d - r)) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => q & 1 == 1,
            std::cmp::Ordering::Less => false,
        };
        if up {
            q.checked_add(1)
        } else {
            Some(q)
        }
    }
}

/// An exact sum of `count × rate` terms, all rates at one scale.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exact {
    sum: U256,
    overflow: bool,
}

impl Exact {
    /// Adds `count × units` (units at the sum's scale).
    pub fn add(&mut self, count: u128, units: u128) {
        match self.sum.checked_add(U256::mul(count, units)) {
            Some(s) => self.sum = s,
            None => self.overflow = true,
        }
    }

    /// `round(sum × mul / div)` half to even, or `None` on overflow.
    pub fn round(self, mul: u128, div: u128) -> Option<u128> {
        if self.overflow {
            return None;
        }
        self.sum.checked_mul_u128(mul)?.div_round_half_even(div)
    }
}

/// A number of nano-units as a decimal amount of the currency (`1234500000` → `"1.2345"`).
pub fn format_nanos(nanos: u128) -> String {
    let (i, r) = (nanos / NANOS_PER_UNIT, nanos % NANOS_PER_UNIT);
    if r == 0 {
        return i.to_string();
    }
    let frac = format!("{r:09}");
    format!("{i}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(
            d("1.25"),
            Decimal {
                units: 125,
                scale: 2
            }
        );
        assert_eq!(
            d("10"),
            Decimal {
                units: 10,
                scale: 0
            }
        );
        assert_eq!(d("0.000000000000000001").units, 1);
        assert_eq!(d("0.000000000000000001").scale, 18);
        assert_eq!(
            d("007.50"),
            Decimal {
                units: 750,
                scale: 2
            }
        );
        assert_eq!(d("999999999999999.999999999999999999").scale, 18);
        assert_eq!(d("1.25").to_string(), "1.25");
        assert_eq!(d("0.050").to_string(), "0.050");
        assert_eq!(d("1.25").units_at(6), 1_250_000);
        for bad in [
            "",
            "-1",
            "+1",
            "1e3",
            "1.",
            ".5",
            "1,5",
            " 1",
            "1 ",
            "1_000",
            "0x10",
            "1.2.3",
            "NaN",
            "1.0000000000000000001",
            "1000000000000000",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Decimal::parse("-1").unwrap_err().contains("negative"));
    }

    #[test]
    fn rounds_half_to_even() {
        let r = |n: u128, div: u128| U256::from_u128(n).div_round_half_even(div).unwrap();
        assert_eq!(r(5, 10), 0); // 0.5 -> 0
        assert_eq!(r(15, 10), 2); // 1.5 -> 2
        assert_eq!(r(25, 10), 2); // 2.5 -> 2
        assert_eq!(r(35, 10), 4);
        assert_eq!(r(26, 10), 3);
        assert_eq!(r(24, 10), 2);
        assert_eq!(r(1, 3), 0);
        assert_eq!(r(2, 3), 1);
        assert_eq!(r(0, 7), 0);
        assert_eq!(r(u128::MAX, 1), u128::MAX);
        assert_eq!(
            U256::from_u128(u128::MAX).div_round_half_even(2),
            Some(1u128 << 127)
        );
    }

    #[test]
    fn wide_products_and_division_are_exact() {
        let p = U256::mul(u128::MAX, u128::MAX);
        assert_eq!(
            p,
            U256 {
                hi: u128::MAX - 1,
                lo: 1
            }
        );
        assert_eq!(p.div_rem(u128::MAX), Some((u128::MAX, 0)));
        let p = U256::mul(1u128 << 100, 3u128 << 90);
        assert_eq!(p.div_rem(1u128 << 90), Some((3u128 << 100, 0)));
        let p = U256::mul(12345678901234567890123, 98765432109876543210);
        let (q, r) = p.div_rem(1_000_000_007).unwrap();
        // Check q * d + r == p.
        let back = U256::mul(q, 1_000_000_007).checked_add(U256::from_u128(r));
        assert_eq!(back, Some(p));
        assert_eq!(U256::mul(u128::MAX, 4).div_rem(2), None);
        // A divisor with its top bit set (the shift carries out of 128 bits).
        let dv = (1u128 << 127) + 12345;
        let n = U256::mul(dv, 987654321)
            .checked_add(U256::from_u128(77))
            .unwrap();
        assert_eq!(n.div_rem(dv), Some((987654321, 77)));
    }

    #[test]
    fn token_cost_rounds_once_per_event() {
        // 3 tokens at 0.0001234 per million = 0.0003702 per million tokens ...
        // exact nanos = 3 * 1234 * 1000 / 10^7 = 0.3702 -> 0.
        let rate = d("0.0001234");
        let mut e = Exact::default();
        e.add(3, rate.units);
        assert_eq!(e.round(1000, pow10(rate.scale)), Some(0));
        // 1,500 tokens at 1.0000005/M: 1500 * 10000005 * 1000 / 10^7 = 1500000.75 -> 1500001
        let rate = d("1.0000005");
        let mut e = Exact::default();
        e.add(1500, rate.units);
        assert_eq!(e.round(1000, pow10(rate.scale)), Some(1_500_001));
        // Two half-cents summed before rounding: 0.5 + 0.5 nanos = 1 (not 0 + 0).
        let rate = d("0.0005"); // per M tokens: 1 token = 0.0005 nanos*1000/1e4 = 0.5 nanos... x1
        let mut e = Exact::default();
        e.add(1, rate.units);
        e.add(1, rate.units);
        assert_eq!(e.round(1000, pow10(rate.scale)), Some(1));
        assert_eq!(format_nanos(1_234_500_000), "1.2345");
        assert_eq!(format_nanos(2_000_000_000), "2");
        assert_eq!(format_nanos(1), "0.000000001");
    }
}
