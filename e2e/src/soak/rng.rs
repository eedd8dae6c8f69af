//! The soak's randomness: one seeded generator (SplitMix64), so a seed replays the same
//! choices, and the run's settings from the environment.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and every seed (0 too) gives a full
/// period; enough for picking operations and fault moments.
#[derive(Clone, Debug)]
pub struct SoakRng(u64);

impl SoakRng {
    pub fn new(seed: u64) -> SoakRng {
        SoakRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        // Multiply-shift: no modulo bias worth speaking of for the small n used here.
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A duration uniformly in `[low, high]`, to the millisecond.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let (low, high) = (low.as_millis() as u64, high.as_millis() as u64);
        Duration::from_millis(low + self.next_u64() % (high.saturating_sub(low) + 1))
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// `CURVE_SOAK_SEED` (decimal or `0x` hex), or one taken from the clock: the run prints it, so
/// any run can be replayed.
pub fn seed_from_env() -> u64 {
    match std::env::var("CURVE_SOAK_SEED") {
        Ok(text) => {
            parse_seed(&text).unwrap_or_else(|| panic!("CURVE_SOAK_SEED={text:?} is not a number"))
        }
        Err(_) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        }
    }
}

pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// How long the soak runs its operations: `CURVE_SOAK_MINUTES` (fractions allowed), else
/// `default`.
pub fn duration_from_env(default: Duration) -> Duration {
    match std::env::var("CURVE_SOAK_MINUTES") {
        Ok(text) => {
            let minutes: f64 = text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("CURVE_SOAK_MINUTES={text:?} is not a number"));
            Duration::from_secs_f64(minutes * 60.0)
        }
        Err(_) => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_choices_and_another_seed_does_not() {
        let draw = |seed| {
            let mut rng = SoakRng::new(seed);
            (0..32).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn draws_stay_in_range_and_reach_every_value() {
        let mut rng = SoakRng::new(7);
        let mut seen = [0usize; 6];
        for _ in 0..6000 {
            seen[rng.below(6)] += 1;
        }
        // Each of 6 values about 1000 times: far from 0 and from 6000.
        assert!(seen.iter().all(|n| (700..1300).contains(n)), "{seen:?}");
        for _ in 0..1000 {
            let d = rng.between(Duration::from_millis(5), Duration::from_millis(9));
            assert!((5..=9).contains(&d.as_millis()), "{d:?}");
        }
        let heads = (0..4000).filter(|_| rng.chance(0.25)).count();
        assert!((800..1200).contains(&heads), "{heads}");
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("1234"), Some(1234));
        assert_eq!(parse_seed(" 0xff "), Some(255));
        assert_eq!(parse_seed("soak"), None);
    }
}
