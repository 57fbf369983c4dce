//! Small array builders shared by the table modules: dictionary columns from [`StrColumn`]
//! codes, text columns from one buffer, nullable integers, UTC timestamps.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Int32Array, Int64Array, StringArray,
    TimestampNanosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, TimeUnit};

use crate::error::Result;
use crate::stored::columns::{StrColumn, NULL};

use super::internal;

/// The type of every dictionary column: `dictionary<int32, utf8>`.
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `timestamp[ns, tz=UTC]`.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// The dictionary (values) of a string column, shared by every batch of a table.
pub fn dict_values<S: AsRef<str>>(values: &[S]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        values.iter().map(AsRef::as_ref),
    ))
}

/// A dictionary array over `values` from `u32` codes ([`NULL`] is null).
pub fn dict_from_codes(codes: &[u32], values: &ArrayRef) -> Result<ArrayRef> {
    let n_values = values.len() as u32;
    let (mut nulls, mut out_of_range) = (0usize, false);
    let keys: Vec<i32> = codes
        .iter()
        .map(|&c| {
            if c == NULL {
                nulls += 1;
                0
            } else {
                out_of_range |= c >= n_values;
                c as i32
            }
        })
        .collect();
    if out_of_range {
        return Err(internal(arrow_schema::ArrowError::InvalidArgumentError(
            "a dictionary code is out of range".into(),
        )));
    }
    let nulls = (nulls > 0).then(|| NullBuffer::from_iter(codes.iter().map(|&c| c != NULL)));
    let keys = Int32Array::new(ScalarBuffer::from(keys), nulls);
    // SAFETY: every non-null key was just checked to index `values`; null keys are 0, and a
    // null slot's key is never dereferenced (`try_new` would check again, more slowly).
    let array = unsafe { DictionaryArray::<Int32Type>::new_unchecked(keys, Arc::clone(values)) };
    Ok(Arc::new(array))
}

/// The rows `[a, b)` of a dictionary-encoded [`StrColumn`], with the shared `values`.
pub fn dict_slice(col: &StrColumn, values: &ArrayRef, a: usize, b: usize) -> Result<ArrayRef> {
    dict_from_codes(&col.codes[a..b], values)
}

/// A dictionary array of a closed set of values (`kind`, `tag`, ...), from small codes.
pub fn enum_dict(codes: impl Iterator<Item = Option<u8>>, values: &ArrayRef) -> Result<ArrayRef> {
    let codes: Vec<u32> = codes.map(|c| c.map_or(NULL, u32::from)).collect();
    dict_from_codes(&codes, values)
}

/// A `utf8` array from one buffer and absolute `offsets` (`len + 1` of them), rebased.
pub fn text(data: &str, offsets: &[usize], valid: Option<&[bool]>) -> Result<ArrayRef> {
    let base = offsets[0];
    let end = *offsets.last().expect("len + 1 offsets");
    let rebased: Vec<i32> = offsets
        .iter()
        .map(|&o| i32::try_from(o - base))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| crate::error::Error::Ledger("a text column batch exceeds 2 GiB".into()))?;
    let nulls = valid
        .filter(|v| v.contains(&false))
        .map(|v| NullBuffer::from(v.to_vec()));
    let array = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(rebased)),
        data.as_bytes()[base..end].to_vec().into(),
        nulls,
    )
    .map_err(internal)?;
    Ok(Arc::new(array))
}

/// An `int64` array; `valid[i] == false` makes row `i` null.
pub fn int64(values: Vec<i64>, valid: Option<Vec<bool>>) -> ArrayRef {
    let nulls = valid.filter(|v| v.contains(&false)).map(NullBuffer::from);
    Arc::new(Int64Array::new(ScalarBuffer::from(values), nulls))
}

/// A `timestamp[ns, tz=UTC]` array.
pub fn timestamps(values: Vec<i64>, valid: Option<Vec<bool>>) -> ArrayRef {
    let nulls = valid.filter(|v| v.contains(&false)).map(NullBuffer::from);
    Arc::new(TimestampNanosecondArray::new(ScalarBuffer::from(values), nulls).with_timezone("UTC"))
}

pub fn booleans(values: &[bool]) -> ArrayRef {
    Arc::new(BooleanArray::from(values.to_vec()))
}

/// Converts an unsigned count to `int64`, saturating (counts never reach 2^63 in practice).
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
