//! The `DateTime` scalar, written as `userExport` documents write times: RFC 3339 in UTC with
//! a `Z`, and as many fraction digits as the time has (none, 3, 6 or 9).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{SecondsFormat, Utc};

/// A point in time (see the scalar's description below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// A point in time: an RFC 3339 string in UTC ending in `Z`, with fractional seconds when
/// the time has them, e.g. `2025-01-31T09:30:00.123456Z` (as in `userExport` documents).
/// Input may carry any offset (`2025-01-31T10:30:00+01:00`); it is converted to UTC.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Ok(DateTime(s.parse::<chrono::DateTime<Utc>>()?)),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(at: chrono::DateTime<Utc>) -> Self {
        DateTime(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_with_z_as_serde_writes_them() {
        let at: chrono::DateTime<Utc> = "2025-01-31T10:30:00.123456+01:00".parse().unwrap();
        let Value::String(written) = DateTime(at).to_value() else {
            panic!("not a string")
        };
        assert_eq!(written, "2025-01-31T09:30:00.123456Z");
        assert_eq!(
            serde_json::to_value(at).unwrap(),
            serde_json::json!(written)
        );
        let whole: chrono::DateTime<Utc> = "2025-01-31T09:30:00Z".parse().unwrap();
        assert!(
            matches!(DateTime(whole).to_value(), Value::String(s) if s == "2025-01-31T09:30:00Z")
        );
        let parsed = DateTime::parse(Value::String("2025-01-31T10:30:00.123456+01:00".into()));
        assert_eq!(parsed.ok(), Some(DateTime(at)));
        assert!(DateTime::parse(Value::String("31/01/2025".into())).is_err());
    }
}
