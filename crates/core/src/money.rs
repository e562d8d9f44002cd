//! Money is integer micro-dollars everywhere: floating point never accumulates
//! spend, it is only used at the edges to parse or print dollars.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An amount of US dollars in millionths (1 USD = 1_000_000).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MicroDollars(pub i64);

impl MicroDollars {
    pub const ZERO: MicroDollars = MicroDollars(0);
    pub const PER_DOLLAR: i64 = 1_000_000;

    /// Converts a dollar amount as written in configuration, rounding to the
    /// nearest micro-dollar. Returns `None` for NaN, infinities and amounts
    /// that do not fit.
    pub fn from_dollars(dollars: f64) -> Option<MicroDollars> {
        if !dollars.is_finite() {
            return None;
        }
        let micros = (dollars * Self::PER_DOLLAR as f64).round();
        if micros.abs() >= i64::MAX as f64 {
            return None;
        }
        Some(MicroDollars(micros as i64))
    }

    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / Self::PER_DOLLAR as f64
    }

    pub fn saturating_add(self, other: MicroDollars) -> MicroDollars {
        MicroDollars(self.0.saturating_add(other.0))
    }
}

impl Add for MicroDollars {
    type Output = MicroDollars;
    fn add(self, rhs: MicroDollars) -> MicroDollars {
        self.saturating_add(rhs)
    }
}

impl AddAssign for MicroDollars {
    fn add_assign(&mut self, rhs: MicroDollars) {
        *self = *self + rhs;
    }
}

impl Sub for MicroDollars {
    type Output = MicroDollars;
    fn sub(self, rhs: MicroDollars) -> MicroDollars {
        MicroDollars(self.0.saturating_sub(rhs.0))
    }
}

/// Prints as dollars with four decimals, e.g. `$0.0123`; estimates are small.
impl fmt::Display for MicroDollars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let dollars = abs / 1_000_000;
        let frac = (abs % 1_000_000) / 100;
        write!(f, "{sign}${dollars}.{frac:04}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dollars_exactly() {
        assert_eq!(
            MicroDollars::from_dollars(2.0),
            Some(MicroDollars(2_000_000))
        );
        assert_eq!(MicroDollars::from_dollars(0.000_001), Some(MicroDollars(1)));
        assert_eq!(
            MicroDollars::from_dollars(0.1 + 0.2),
            Some(MicroDollars(300_000))
        );
        assert_eq!(MicroDollars::from_dollars(f64::NAN), None);
        assert_eq!(MicroDollars::from_dollars(f64::INFINITY), None);
    }

    #[test]
    fn displays_as_dollars() {
        assert_eq!(MicroDollars(1_234_500).to_string(), "$1.2345");
        assert_eq!(MicroDollars(-50).to_string(), "-$0.0000");
        assert_eq!(MicroDollars(100).to_string(), "$0.0001");
    }
}
