//! Migrations of the accounts schema, tracked in `seaql_migrations_accounts`.

use sea_orm_migration::prelude::*;

mod m0001_infrastructure;
mod m0002_accounts;
mod m0003_registration_locks_per_person;

/// The accounts schema's migrator.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_infrastructure::Migration),
            Box::new(m0002_accounts::Migration),
            Box::new(m0003_registration_locks_per_person::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_accounts").into_iden()
    }
}
