//! The single definition of the tables, their keys, indexes and TTL, and of the audio bucket.
//! `local/` creates the tables from it, tests create theirs from it, and a test checks that
//! `template.yaml` declares exactly the same.

use super::{sdk_failure, StoreError};
use crate::Names;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

/// Every table's partition key, sort key and TTL attribute.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    S,
    N,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: &'static str,
    pub kind: AttrType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    All,
    KeysOnly,
}

impl IndexProjection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::KeysOnly => "KEYS_ONLY",
        }
    }
}

/// A global secondary index. All of ours are sparse: an item without the key attributes is not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub pk: KeyAttr,
    pub sk: Option<KeyAttr>,
    pub projection: IndexProjection,
}

/// A table: `pk`/`sk` strings, TTL on `expires_at`, on-demand billing, and its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The logical id of the table in `template.yaml`.
    pub logical_id: &'static str,
    pub indexes: &'static [IndexDef],
    /// Whether the table has a stream of new item images (the alerts' outbox).
    pub stream: bool,
}

const fn s(name: &'static str) -> KeyAttr {
    KeyAttr {
        name,
        kind: AttrType::S,
    }
}

const fn n(name: &'static str) -> KeyAttr {
    KeyAttr {
        name,
        kind: AttrType::N,
    }
}

pub const USERS: TableDef = TableDef {
    logical_id: "UsersTable",
    indexes: &[
        IndexDef {
            // Stripe events that carry no user id find the user by customer id.
            name: "by_customer",
            pk: s("stripe_customer_id"),
            sk: None,
            projection: IndexProjection::KeysOnly,
        },
        IndexDef {
            // Stripe subscribers by when their stored paid tier lapses: housekeeping queries the
            // lapsed ones instead of scanning every user.
            name: "lapsing",
            pk: s("lapse_shard"),
            sk: Some(n("lapses_at")),
            projection: IndexProjection::All,
        },
    ],
    stream: false,
};

pub const STATS: TableDef = TableDef {
    logical_id: "StatsTable",
    indexes: &[
        IndexDef {
            // Generations granted an upload, by the UTC day of the grant, with the audio key: the
            // daily housekeeping accounts each of them again (an S3 event can be lost) without a
            // scan.
            name: UPLOADS_BY_DAY,
            pk: s("upload_day"),
            sk: Some(s("upload_key")),
            projection: IndexProjection::KeysOnly,
        },
        IndexDef {
            // Every item a user owns outside their own partition (generations, jobs, lyrics
            // versions, play markers): what an account's export and deletion find without a scan.
            name: BY_OWNER,
            pk: s("owner_id"),
            sk: Some(s("pk")),
            projection: IndexProjection::KeysOnly,
        },
    ],
    stream: false,
};

/// The index of the stats table's items by their owner (`STATS`).
pub const BY_OWNER: &str = "by_owner";

/// The index of the pool table's rows by the user they are of: likes and ranking rows (`POOL`).
pub const BY_USER: &str = "by_user";

/// The index of upload grants by day (`STATS`).
pub const UPLOADS_BY_DAY: &str = "uploads_by_day";

/// Pool listings: `lst` is set to `ALL` and `lst_genre` to `G#<genre>` only once a contribution's
/// audio is stored, so unlisted items stay out of every listing index. Sort keys are numbers:
/// `recent_rank` (contribution time in ms), `popularity` (plays × 2³² + likes), `qual_rank`
/// (points × 10¹³ + contribution time in ms).
pub const POOL: TableDef = TableDef {
    logical_id: "PoolTable",
    indexes: &[
        IndexDef {
            name: "recent",
            pk: s("lst"),
            sk: Some(n("recent_rank")),
            projection: IndexProjection::All,
        },
        IndexDef {
            name: "recent_genre",
            pk: s("lst_genre"),
            sk: Some(n("recent_rank")),
            projection: IndexProjection::All,
        },
        IndexDef {
            name: "popular",
            pk: s("lst"),
            sk: Some(n("popularity")),
            projection: IndexProjection::All,
        },
        IndexDef {
            name: "popular_genre",
            pk: s("lst_genre"),
            sk: Some(n("popularity")),
            projection: IndexProjection::All,
        },
        IndexDef {
            name: "quality",
            pk: s("lst"),
            sk: Some(n("qual_rank")),
            projection: IndexProjection::All,
        },
        IndexDef {
            name: "quality_genre",
            pk: s("lst_genre"),
            sk: Some(n("qual_rank")),
            projection: IndexProjection::All,
        },
        // Contributor ranking: one row per user and period (`W#2026-W48`, `M#2026-11`, `ALL`).
        IndexDef {
            name: "ranking",
            pk: s("rank_period"),
            sk: Some(n("points")),
            projection: IndexProjection::All,
        },
        // A user's likes and ranking rows: what an account's export and deletion find without a
        // scan.
        IndexDef {
            name: BY_USER,
            pk: s("user_id"),
            sk: Some(s("pk")),
            projection: IndexProjection::KeysOnly,
        },
    ],
    stream: false,
};

/// Usage alerts and their markers (`store::alerts`). Its stream carries each new alert to the
/// delivery function.
pub const ALERTS: TableDef = TableDef {
    logical_id: "AlertsTable",
    indexes: &[],
    stream: true,
};

/// The audit log of admin actions (`store::audit`): one partition, entries and their head.
pub const AUDIT: TableDef = TableDef {
    logical_id: "AuditTable",
    indexes: &[],
    stream: false,
};

pub const TABLES: [TableDef; 5] = [USERS, STATS, POOL, ALERTS, AUDIT];

impl TableDef {
    /// This table's name in a deployment.
    pub fn name<'a>(&self, names: &'a Names) -> &'a str {
        match self.logical_id {
            "UsersTable" => &names.users_table,
            "StatsTable" => &names.stats_table,
            "AlertsTable" => &names.alerts_table,
            "AuditTable" => &names.audit_table,
            _ => &names.pool_table,
        }
    }

    /// Every attribute a key of the table or of an index uses, once each, in a stable order.
    pub fn attributes(&self) -> Vec<KeyAttr> {
        let mut attrs = vec![s(PK), s(SK)];
        for index in self.indexes {
            for attr in std::iter::once(index.pk).chain(index.sk) {
                if !attrs.iter().any(|a| a.name == attr.name) {
                    attrs.push(attr);
                }
            }
        }
        attrs
    }
}

fn scalar(kind: AttrType) -> ScalarAttributeType {
    match kind {
        AttrType::S => ScalarAttributeType::S,
        AttrType::N => ScalarAttributeType::N,
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(StoreError::invalid_request)
}

/// The CreateTable description of one of our indexes.
fn global_index(index: &IndexDef) -> Result<GlobalSecondaryIndex, StoreError> {
    let projection = match index.projection {
        IndexProjection::All => ProjectionType::All,
        IndexProjection::KeysOnly => ProjectionType::KeysOnly,
    };
    let mut gsi = GlobalSecondaryIndex::builder()
        .index_name(index.name)
        .key_schema(key(index.pk.name, KeyType::Hash)?)
        .projection(Projection::builder().projection_type(projection).build());
    if let Some(sk) = index.sk {
        gsi = gsi.key_schema(key(sk.name, KeyType::Range)?);
    }
    gsi.build().map_err(StoreError::invalid_request)
}

/// Creates every table (on-demand, TTL on) that does not exist yet.
pub async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    names: &Names,
) -> Result<(), StoreError> {
    for table in TABLES {
        let name = table.name(names);
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?);
        for attr in table.attributes() {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr.name)
                    .attribute_type(scalar(attr.kind))
                    .build()
                    .map_err(StoreError::invalid_request)?,
            );
        }
        for index in table.indexes {
            request = request.global_secondary_indexes(global_index(index)?);
        }
        if table.stream {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(StoreError::invalid_request)?,
            );
        }
        match request.send().await {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                continue
            }
            Err(err) => return Err(sdk_failure("CreateTable", err)),
        }
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(StoreError::invalid_request)?,
            )
            .send()
            .await
            .map_err(|err| sdk_failure("UpdateTimeToLive", err))?;
    }
    Ok(())
}

/// Creates the audio bucket if it does not exist yet, versioned as template.yaml's is (so deletes
/// and overwrites behave locally as they do in AWS).
pub async fn create_bucket(client: &aws_sdk_s3::Client, names: &Names) -> Result<(), StoreError> {
    match client
        .create_bucket()
        .bucket(&names.audio_bucket)
        .send()
        .await
    {
        Ok(_) => {}
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) => {}
        Err(err) => return Err(sdk_failure("CreateBucket", err)),
    }
    client
        .put_bucket_versioning()
        .bucket(&names.audio_bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|err| sdk_failure("PutBucketVersioning", err))
}
