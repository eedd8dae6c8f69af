//! The 5-field cron schedules of `spec.etcd.backup.schedule`, in UTC: the grammar (the same
//! one the CRD's CEL rule states as [`PATTERN`]), the next firing after a moment, and the
//! longest gap between two firings (the backup alert's threshold). It imports nothing of the
//! crate.
//!
//! A field is a comma list of `*`, `N` or `N-M`, each optionally `/STEP`; `N/STEP` runs from N
//! to the field's end. Day of week 0-7 (0 and 7 are Sunday). As in Vixie cron and Kubernetes'
//! CronJob: when both day of month and day of week are restricted (neither starts with `*`), a
//! day matching either fires. The macros `@hourly`, `@daily` (`@midnight`), `@weekly`,
//! `@monthly` and `@yearly` (`@annually`) stand for their usual five fields. Written here rather
//! than taken from a crate (croner, cron): they accept more (seconds, `L`, `W`, `#`, `?`, names)
//! than a CEL rule can state, and the operator must accept exactly what the CRD accepts.

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;

const MINUTE: &str = "[0-5]?[0-9]";
const HOUR: &str = "[01]?[0-9]|2[0-3]";
const DAY_OF_MONTH: &str = "0?[1-9]|[12][0-9]|3[01]";
const MONTH: &str = "0?[1-9]|1[0-2]";
const DAY_OF_WEEK: &str = "0?[0-7]";
const MACROS: &str = "@(hourly|daily|midnight|weekly|monthly|yearly|annually)";

/// The longest schedule text the CRD takes (bounds the CEL rule's cost).
pub const MAX_LEN: usize = 100;

/// The grammar as an RE2 pattern (CEL's `matches`): value bounds included, not the order of a
/// range's ends, nor whether the schedule ever fires (only the operator judges those).
pub fn pattern() -> String {
    let field = |value: &str| {
        let item = format!("([*]|({value})(-({value}))?)(/[1-9][0-9]?)?");
        format!("{item}(,{item})*")
    };
    format!(
        "^({MACROS}|{} +{} +{} +{} +{})$",
        field(MINUTE),
        field(HOUR),
        field(DAY_OF_MONTH),
        field(MONTH),
        field(DAY_OF_WEEK)
    )
}

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day of month or day of week starts with `*`: both must match (else either).
    day_star: bool,
}

/// How far ahead a firing is looked for: past it a schedule never fires (`0 0 30 2 *`). Four
/// years and a day cover every leap day.
const HORIZON_DAYS: i64 = 4 * 366 + 1;

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
    },
];

/// Only ASCII digits (Rust's parse also takes a leading `+`, which cron does not).
fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let number = |s: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if (field.min..=field.max).contains(&n) && digits(s) && s.len() <= 2 => Ok(n),
            _ => Err(format!(
                "{} must be {}-{} (got {s:?})",
                field.name, field.min, field.max
            )),
        }
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<u32>() {
                Ok(s) if (1..=99).contains(&s) && digits(step) && !step.starts_with('0') => {
                    (range, Some(s))
                }
                _ => {
                    return Err(format!("{} step must be 1-99 (got {step:?})", field.name));
                }
            },
            None => (item, None),
        };
        let (first, last) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let n = number(range)?;
            (n, if step.is_some() { field.max } else { n })
        };
        if first > last {
            return Err(format!(
                "{} range {range:?} runs backwards: its start is after its end",
                field.name
            ));
        }
        let step = step.unwrap_or(1);
        for value in (first..=last).step_by(step as usize) {
            bits |= 1 << value;
        }
    }
    Ok(bits)
}

impl Schedule {
    /// Reads a schedule; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let expanded = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split(' ').filter(|f| !f.is_empty()).collect();
        if fields.len() != 5 || expanded.starts_with(' ') || expanded.ends_with(' ') {
            return Err(format!(
                "must be 5 fields separated by spaces (minute hour day-of-month month day-of-week) or a macro such as @daily (got {text:?})"
            ));
        }
        let mut bits = [0u64; 5];
        for (i, (field, text)) in FIELDS.iter().zip(&fields).enumerate() {
            bits[i] = parse_field(text, field)?;
        }
        // Sunday is 0 and 7.
        let days_of_week = (bits[4] | (bits[4] >> 7)) & 0x7f;
        let schedule = Schedule {
            minutes: bits[0],
            hours: bits[1],
            days_of_month: bits[2],
            months: bits[3],
            days_of_week,
            day_star: fields[2].starts_with('*') || fields[4].starts_with('*'),
        };
        if schedule.next_after(epoch()).is_none() {
            return Err(format!(
                "never fires: no day matches its day of month and month (got {text:?})"
            ));
        }
        Ok(schedule)
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first firing strictly after `after` (whole minutes, UTC), or `None` if there is none
    /// within four years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(TimeZone::UTC);
        let mut date = start.date();
        let end = date
            .checked_add(k8s_openapi::jiff::Span::new().days(HORIZON_DAYS))
            .ok()?;
        // The first candidate minute: the one after `after`'s.
        let mut hour = start.hour() as u32;
        let mut minute = start.minute() as u32 + 1;
        while date <= end {
            if self.months & (1 << date.month()) != 0 && self.day_matches(date) {
                while hour < 24 {
                    if self.hours & (1 << hour) != 0 {
                        let later = self.minutes >> minute;
                        if minute < 60 && later != 0 {
                            let minute = minute + later.trailing_zeros();
                            let at = date.at(hour as i8, minute as i8, 0, 0);
                            return at.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
                        }
                    }
                    hour += 1;
                    minute = 0;
                }
            }
            date = date.tomorrow().ok()?;
            hour = 0;
            minute = 0;
        }
        None
    }

    /// The longest time between two firings, over four years from 2000-01-01 (a leap year
    /// starting on a Saturday, so every day-of-month × weekday case occurs), in seconds.
    pub fn longest_gap_seconds(&self) -> i64 {
        const MAX_FIRINGS: usize = 5000;
        let horizon = epoch().as_second() + HORIZON_DAYS * 86400;
        let mut longest = 0;
        let Some(mut last) = self.next_after(epoch()) else {
            return 0;
        };
        for _ in 0..MAX_FIRINGS {
            let Some(next) = self.next_after(last) else {
                break;
            };
            longest = longest.max(next.as_second() - last.as_second());
            if next.as_second() > horizon {
                break;
            }
            last = next;
        }
        longest
    }
}

fn epoch() -> Timestamp {
    Timestamp::from_second(946_684_800).expect("2000-01-01T00:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_firings_follow_each_field() {
        let cases = [
            ("* * * * *", "2026-12-07T10:27:36Z", "2026-12-07T10:28:00Z"),
            ("* * * * *", "2026-12-07T10:28:00Z", "2026-12-07T10:29:00Z"),
            (
                "*/15 * * * *",
                "2026-12-07T10:45:00Z",
                "2026-12-07T11:00:00Z",
            ),
            ("5 3 * * *", "2026-12-07T03:05:00Z", "2026-12-08T03:05:00Z"),
            (
                "0 */6 * * *",
                "2026-12-07T19:00:00Z",
                "2026-12-08T00:00:00Z",
            ),
            ("30 2 1 * *", "2026-12-31T23:59:00Z", "2027-01-01T02:30:00Z"),
            ("0 0 29 2 *", "2027-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            // 2026-12-07 is a Monday; 7 is Sunday as 0 is.
            ("0 12 * * 7", "2026-12-07T00:00:00Z", "2026-12-13T12:00:00Z"),
            (
                "0 12 * * 1-5",
                "2026-12-11T12:00:00Z",
                "2026-12-14T12:00:00Z",
            ),
            // Both days restricted: either fires (the 13th, or a Wednesday).
            ("0 0 13 * 3", "2026-12-07T00:00:00Z", "2026-12-09T00:00:00Z"),
            ("0 0 13 * 3", "2026-12-09T00:00:00Z", "2026-12-13T00:00:00Z"),
            ("0 0 13 * 5", "2026-12-07T00:00:00Z", "2026-12-11T00:00:00Z"),
            // One of them starts with `*`: both must match (every day that is a Friday).
            (
                "0 0 */1 * 5",
                "2026-12-07T00:00:00Z",
                "2026-12-11T00:00:00Z",
            ),
            // The 1st, 14th or 27th that is a Friday.
            (
                "0 0 */13 * 5",
                "2026-12-07T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "10,40 1-2/1 * * *",
                "2026-12-07T01:40:00Z",
                "2026-12-07T02:10:00Z",
            ),
            (
                "50/5 * * * *",
                "2026-12-07T01:56:00Z",
                "2026-12-07T02:50:00Z",
            ),
            ("@daily", "2026-12-07T10:00:00Z", "2026-12-08T00:00:00Z"),
            ("@weekly", "2026-12-07T10:00:00Z", "2026-12-13T00:00:00Z"),
            ("@monthly", "2026-12-07T10:00:00Z", "2027-01-01T00:00:00Z"),
            ("@hourly", "2026-12-07T10:00:00Z", "2026-12-07T11:00:00Z"),
        ];
        for (schedule, after, expected) in cases {
            assert_eq!(next(schedule, after), expected, "{schedule} after {after}");
        }
    }

    #[test]
    fn the_longest_gap_is_the_schedules_widest_interval() {
        let cases = [
            ("* * * * *", 60),
            ("*/5 * * * *", 300),
            ("0 * * * *", 3600),
            ("0 3 * * *", 86400),
            ("0 0,1 * * *", 23 * 3600),
            ("0 0 * * 0", 7 * 86400),
            // The longest months.
            ("0 0 1 * *", 31 * 86400),
            ("0 0 1 1 *", 366 * 86400),
            ("0 0 29 2 *", 4 * 365 * 86400 + 86400),
        ];
        for (schedule, gap) in cases {
            assert_eq!(
                Schedule::parse(schedule).unwrap().longest_gap_seconds(),
                gap,
                "{schedule}"
            );
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_field_and_why() {
        let cases = [
            ("* * * *", "must be 5 fields"),
            (" * * * * *", "must be 5 fields"),
            ("60 * * * *", "minute must be 0-59 (got \"60\")"),
            ("* 24 * * *", "hour must be 0-23"),
            ("* * 0 * *", "day of month must be 1-31"),
            ("* * * 13 *", "month must be 1-12"),
            ("* * * * 8", "day of week must be 0-7"),
            ("*/0 * * * *", "minute step must be 1-99"),
            ("5-1 * * * *", "minute range \"5-1\" runs backwards"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4,6 *", "never fires"),
            ("@reboot", "must be 5 fields"),
            ("a * * * *", "minute must be 0-59"),
        ];
        for (schedule, expected) in cases {
            let error = Schedule::parse(schedule).unwrap_err();
            assert!(error.contains(expected), "{schedule}: {error}");
        }
    }

    /// The CRD's pattern takes what the parser takes; what it takes besides is only the
    /// backwards ranges and the schedules that never fire, which the operator names.
    #[test]
    fn the_pattern_and_the_parser_agree() {
        let re = regex::Regex::new(&pattern()).unwrap();
        let schedules = [
            "* * * * *",
            "*/5 * * * *",
            "0 3 * * *",
            "0 0 1,15 * 1-5",
            "05 03 01 01 07",
            "59 23 31 12 7",
            "0-59/7 0-23/99 1-31 1-12 0-7",
            "@daily",
            "@annually",
            "60 * * * *",
            "* * * * 8",
            "*/0 * * * *",
            "* * * *",
            "5-1 * * * *",
            "0 0 30 2 *",
            "*/100 * * * *",
            "* * * * * *",
            "*  *  * * *",
            "@every 5m",
            "+5 * * * *",
            "1,,2 * * * *",
            "000 * * * *",
        ];
        for schedule in schedules {
            let parsed = Schedule::parse(schedule);
            let matched = re.is_match(schedule);
            match parsed {
                Ok(_) => assert!(matched, "{schedule} parsed but the pattern refuses it"),
                Err(why) if matched => assert!(
                    why.contains("runs backwards") || why.contains("never fires"),
                    "{schedule}: the pattern takes it, the parser says {why}"
                ),
                Err(_) => {}
            }
        }
    }
}
