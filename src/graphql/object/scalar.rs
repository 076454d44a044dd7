//! `BigInt`: a 64-bit integer written as a JSON number. GraphQL's `Int` is 32-bit, and money and
//! call totals (summed over days, periods or every account) outgrow it; clients that check `Int`'s
//! range would refuse such answers, so those fields say what they are.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

/// A signed 64-bit integer, serialised as a JSON number. Exact in JavaScript up to 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BigInt(pub i64);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(BigInt)
                .ok_or_else(|| InputValueError::custom("must be a 64-bit integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}

impl From<i64> for BigInt {
    fn from(n: i64) -> Self {
        BigInt(n)
    }
}
