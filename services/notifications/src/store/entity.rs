//! sea-orm entities of the notifications schema.

/// `sent_messages`: the ledger of delivered messages, one row per Message-ID.
pub mod sent_message {
    use sea_orm::entity::prelude::*;

    /// A message delivered (handed to the mail server, or written as a file).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sent_messages")]
    pub struct Model {
        /// The stable Message-ID (`<…@…>`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        /// The event the notice is about.
        pub event_id: String,
        /// The recipient's principal.
        pub recipient: String,
        /// The notice (`relationship-request-received`, …).
        pub notice: String,
        /// When it was delivered, microseconds since the epoch.
        pub sent_at_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `consumer_positions`: where each event consumer of this service resumes.
pub mod consumer_position {
    use sea_orm::entity::prelude::*;

    /// A consumer's acknowledged position.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consumer_positions")]
    pub struct Model {
        /// The consumer's name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        /// The bus position.
        pub position: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `dead_letters`: messages given up on (refused for good by the mail server, or not delivered
/// within `give_up_after_ms`), kept exactly as built so a replay resends them unchanged.
pub mod dead_letter {
    use sea_orm::entity::prelude::*;

    /// A message given up on.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dead_letters")]
    pub struct Model {
        /// The stable Message-ID (`<…@…>`), as in the ledger.
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        /// The event the notice is about.
        pub event_id: String,
        /// The recipient's principal.
        pub recipient: String,
        /// The recipient's address (the envelope's).
        pub address: String,
        /// The notice (`relationship-request-received`, …).
        pub notice: String,
        /// The whole message as built (RFC 5322, CRLF line ends).
        pub message: String,
        /// The last error.
        pub error: String,
        /// How many times it was tried.
        pub attempts: i64,
        /// The first failure, microseconds since the epoch.
        pub first_failed_us: i64,
        /// The last failure, microseconds since the epoch.
        pub last_failed_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
