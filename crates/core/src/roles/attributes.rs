//! The boolean role attributes pgops manages, each defined once, here: its field (in pgops.role,
//! Pigsty's user objects, the catalog reader's JSON and the plan's diffs), its keyword in
//! CREATE/ALTER ROLE, its pg_authid column, and its default. The config table, the loaders, the
//! catalog reader, the planner, the drift view and the export all follow this list; the tests
//! below check that the SQL files (the table and the catalog query) follow it too.
//!
//! To add an attribute: one line in `role_attributes!` below, its column in `sql/roles.sql`
//! (table pgops.role) and its key in `sql/queries/roles_live.sql`.

use serde::{Deserialize, Serialize};

/// One attribute, as data.
pub struct Attribute {
    /// Field name: pgops.role's column, Pigsty's key, the JSON key of the catalog reader.
    pub field: &'static str,
    /// The keyword that grants it in CREATE/ALTER ROLE (`NO` + keyword takes it away).
    pub keyword: &'static str,
    /// Its column in pg_authid.
    pub column: &'static str,
    /// PostgreSQL's default for CREATE ROLE (pgops.role's column default).
    pub default: bool,
    pub get: fn(&Attributes) -> bool,
    pub set: fn(&mut Attributes, bool),
}

impl Attribute {
    /// `LOGIN` or `NOLOGIN`.
    pub fn clause(&self, on: bool) -> String {
        if on {
            self.keyword.to_string()
        } else {
            format!("NO{}", self.keyword)
        }
    }
}

macro_rules! role_attributes {
    ($( $field:ident : $keyword:literal, $column:literal, default $default:literal, $doc:literal; )*) => {
        /// A role's boolean attributes (field names as in pgops.role and Pigsty).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Attributes {
            $( #[doc = $doc] pub $field: bool, )*
        }

        impl Default for Attributes {
            fn default() -> Self {
                Attributes { $( $field: $default, )* }
            }
        }

        /// Every attribute, in the order CREATE ROLE lists them.
        pub const ATTRIBUTES: &[Attribute] = &[
            $( Attribute {
                field: stringify!($field),
                keyword: $keyword,
                column: $column,
                default: $default,
                get: |a| a.$field,
                set: |a, v| a.$field = v,
            }, )*
        ];
    };
}

role_attributes! {
    login: "LOGIN", "rolcanlogin", default true, "May log in.";
    superuser: "SUPERUSER", "rolsuper", default false, "Bypasses every permission check.";
    createdb: "CREATEDB", "rolcreatedb", default false, "May create databases.";
    createrole: "CREATEROLE", "rolcreaterole", default false, "May create, alter and drop roles.";
    inherit: "INHERIT", "rolinherit", default true, "Uses the privileges of the roles it is a member of.";
    replication: "REPLICATION", "rolreplication", default false, "May stream WAL and create replication slots.";
    bypassrls: "BYPASSRLS", "rolbypassrls", default false, "Bypasses row-level security.";
}

impl Attributes {
    /// Every attribute with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Attribute, bool)> + '_ {
        ATTRIBUTES.iter().map(move |a| (a, (a.get)(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keywords_and_accessors_agree() {
        let mut a = Attributes::default();
        for attr in ATTRIBUTES {
            assert_eq!(attr.field.to_ascii_uppercase(), attr.keyword, "{}", attr.field);
            assert_eq!((attr.get)(&a), attr.default, "{}", attr.field);
            (attr.set)(&mut a, !attr.default);
            assert_eq!((attr.get)(&a), !attr.default, "{}", attr.field);
        }
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json.as_object().unwrap().len(), ATTRIBUTES.len());
        assert_eq!(serde_json::from_value::<Attributes>(json).unwrap(), a);
        assert_eq!(ATTRIBUTES[0].clause(false), "NOLOGIN");
    }

    #[test]
    fn the_config_table_has_a_column_per_attribute_with_its_default() {
        let table = include_str!("../../../../sql/roles.sql");
        let table = &table[table
            .find("CREATE TABLE pgops.role (")
            .expect("pgops.role in sql/roles.sql")..];
        let table = &table[..table.find(");").unwrap()];
        for a in ATTRIBUTES {
            // Nullable: NULL means "not managed" (pgops.load_pigsty leaves undeclared attributes NULL).
            let want = format!("{} boolean DEFAULT {}", a.field, a.default);
            assert!(
                table
                    .lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ").starts_with(&want)),
                "sql/roles.sql: pgops.role needs `{want}`"
            );
        }
    }

    #[test]
    fn the_catalog_reader_reads_every_attribute() {
        let query = include_str!("../../../../sql/queries/roles_live.sql");
        for a in ATTRIBUTES {
            let want = format!("'{}', r.{}", a.field, a.column);
            assert!(query.contains(&want), "sql/queries/roles_live.sql needs {want}");
        }
    }
}
