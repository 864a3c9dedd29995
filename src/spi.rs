//! Read-only SPI queries.
//!
//! pgrx's `Spi::get_one*` run through `SpiClient::update`, which assigns a transaction ID to the
//! calling transaction: every read would burn an XID (a launcher polling every few seconds would
//! age the cluster by itself) and fail on a standby ("cannot assign TransactionIds during
//! recovery"). These run through `SpiClient::select` instead. Use `Spi::run*` only to write.

use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::spi::{Spi, SpiResult};

/// The first column of the first row (None when there is no row or the value is NULL).
pub fn get_one<A: FromDatum + IntoDatum>(query: &str) -> SpiResult<Option<A>> {
    get_one_with_args(query, &[])
}

pub fn get_one_with_args<A: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> SpiResult<Option<A>> {
    Spi::connect(|c| {
        let t = c.select(query, Some(1), args)?;
        if t.is_empty() { Ok(None) } else { t.first().get_one() }
    })
}

pub fn get_two_with_args<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    query: &str,
    args: &[DatumWithOid],
) -> SpiResult<(Option<A>, Option<B>)> {
    Spi::connect(|c| {
        let t = c.select(query, Some(1), args)?;
        if t.is_empty() {
            Ok((None, None))
        } else {
            t.first().get_two()
        }
    })
}

/// The query's single jsonb value (JSON null when there is no row or the value is NULL).
pub fn json(query: &str, args: &[DatumWithOid]) -> SpiResult<serde_json::Value> {
    let v: Option<pgrx::JsonB> = get_one_with_args(query, args)?;
    Ok(v.map(|j| j.0).unwrap_or(serde_json::Value::Null))
}

/// The single `json` (not jsonb) value of `query`, parsed straight into `T`: for large results
/// built as text (no intermediate `serde_json::Value`). `None` when there is no row or it is NULL.
pub fn json_text<T: serde::de::DeserializeOwned>(query: &str, args: &[DatumWithOid]) -> crate::error::Result<Option<T>> {
    let v: Option<pgrx::datum::JsonString> = get_one_with_args(query, args)?;
    match v {
        None => Ok(None),
        Some(text) => Ok(Some(serde_json::from_str(&text.0)?)),
    }
}

/// Every row of `query` as a JSON object (column name → value), in the query's order.
pub fn rows(query: &str, args: &[DatumWithOid]) -> SpiResult<Vec<serde_json::Value>> {
    let all = json(
        &format!("SELECT coalesce(jsonb_agg(to_jsonb(q)), '[]') FROM ({query}) q"),
        args,
    )?;
    Ok(all.as_array().cloned().unwrap_or_default())
}
