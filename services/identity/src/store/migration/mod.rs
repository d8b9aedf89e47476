//! Migrations of the identity schema, tracked in `seaql_migrations_identity`.

use sea_orm_migration::prelude::*;

mod m0001_infrastructure;
mod m0002_identity;
mod m0003_revocations;
mod m0004_notices;

/// The identity schema's migrator.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_infrastructure::Migration),
            Box::new(m0002_identity::Migration),
            Box::new(m0003_revocations::Migration),
            Box::new(m0004_notices::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_identity").into_iden()
    }
}
