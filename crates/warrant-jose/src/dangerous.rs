//! Decoding without verification. Only for explaining a token to a human (`warrant token
//! inspect`) or finding its issuer before verification; never for a decision.

use serde_json::{Map, Value};

use crate::{JoseError, b64};

/// A JSON object: a JOSE header or a claims set.
pub type Object = Map<String, Value>;

/// Splits a compact JWS and decodes its header and claims **without checking the signature**.
pub fn decode_unverified(token: &str) -> Result<(Object, Object), JoseError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let header = b64::decode(h).ok_or(JoseError::Malformed)?;
    let payload = b64::decode(p).ok_or(JoseError::Malformed)?;
    let header = serde_json::from_slice(&header).map_err(|_| JoseError::BadHeader)?;
    let claims = serde_json::from_slice(&payload).map_err(|_| JoseError::BadClaims)?;
    Ok((header, claims))
}
