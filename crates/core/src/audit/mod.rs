//! Security audit helpers SQL cannot do well: the certificate and file modes as the server sees
//! them (`files`), and text heuristics — inline secrets, NULL ciphers (`text`).

pub mod files;
pub mod text;
