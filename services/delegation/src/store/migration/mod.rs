//! Migrations of the delegation schema, tracked in `seaql_migrations_delegation`.

use sea_orm_migration::prelude::*;

mod m0001_infrastructure;
mod m0002_delegation;
mod m0003_sweep_lease;
mod m0004_reminder_indexes;
mod m0005_assignee_client_index;

/// The delegation schema's migrator.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_infrastructure::Migration),
            Box::new(m0002_delegation::Migration),
            Box::new(m0003_sweep_lease::Migration),
            Box::new(m0004_reminder_indexes::Migration),
            Box::new(m0005_assignee_client_index::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_delegation").into_iden()
    }
}
