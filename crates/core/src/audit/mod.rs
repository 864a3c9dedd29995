//! Security audit helpers SQL cannot do well: the certificate and file modes as the server sees
//! them (`files`), text heuristics — inline secrets, NULL ciphers (`text`), the CIS benchmark's
//! rules over setting text and addresses (`cis`), and the report a DBA hands over (`report`).

pub mod cis;
pub mod files;
pub mod report;
pub mod text;
