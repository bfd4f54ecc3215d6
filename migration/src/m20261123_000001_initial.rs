use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LogonSessions {
    Table,
    Id,
    Token,
    UserId,
    CreatedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Name,
    JobType,
    Description,
    Command,
    WorkingDir,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum JobSessions {
    Table,
    Id,
    JobId,
    JobName,
    JobType,
    Name,
    State,
    Result,
    Progress,
    FailureMessage,
    CreationTime,
    EndTime,
    RunnerId,
    Pid,
    ExitCode,
    StartTaskId,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    UserId,
    Operation,
    TargetId,
    State,
    Attempt,
    Route,
    RunnerId,
    CancelRequested,
    Success,
    Message,
    RelatedSessionId,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Runners {
    Table,
    Id,
    StartedAt,
    HeartbeatAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_auto(Users::Id))
                .col(string_uniq(Users::Name))
                .col(string(Users::PasswordHash))
                .col(string_len(Users::Role, 32).default("PortalAdministrator"))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(LogonSessions::Table)
                .col(string(LogonSessions::Id).primary_key())
                .col(string_uniq(LogonSessions::Token))
                .col(integer(LogonSessions::UserId))
                .col(timestamp_with_time_zone(LogonSessions::CreatedAt))
                .col(timestamp_with_time_zone(LogonSessions::LastSeenAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(LogonSessions::Table, LogonSessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(string(Jobs::Id).primary_key())
                .col(string_uniq(Jobs::Name))
                .col(string(Jobs::JobType))
                .col(text(Jobs::Description))
                .col(text(Jobs::Command))
                .col(text(Jobs::WorkingDir))
                .col(timestamp_with_time_zone(Jobs::CreatedAt))
                .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(JobSessions::Table)
                .col(string(JobSessions::Id).primary_key())
                .col(string(JobSessions::JobId))
                .col(string(JobSessions::JobName))
                .col(string(JobSessions::JobType))
                .col(string(JobSessions::Name))
                .col(string_len(JobSessions::State, 16))
                .col(string_len(JobSessions::Result, 16))
                .col(integer(JobSessions::Progress))
                .col(text_null(JobSessions::FailureMessage))
                .col(timestamp_with_time_zone(JobSessions::CreationTime))
                .col(timestamp_with_time_zone_null(JobSessions::EndTime))
                .col(string(JobSessions::RunnerId))
                .col(integer_null(JobSessions::Pid))
                .col(integer_null(JobSessions::ExitCode))
                .col(integer_uniq(JobSessions::StartTaskId))
                .foreign_key(
                    ForeignKey::create().from(JobSessions::Table, JobSessions::JobId).to(Jobs::Table, Jobs::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_job_sessions_job").table(JobSessions::Table).col(JobSessions::JobId).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_sessions_runner_state")
                .table(JobSessions::Table)
                .col(JobSessions::RunnerId)
                .col(JobSessions::State)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Tasks::Table)
                .col(pk_auto(Tasks::Id))
                .col(integer(Tasks::UserId))
                .col(string_len(Tasks::Operation, 32))
                .col(string(Tasks::TargetId))
                .col(string_len(Tasks::State, 16))
                .col(integer(Tasks::Attempt))
                .col(string_null(Tasks::Route))
                .col(string_null(Tasks::RunnerId))
                .col(boolean(Tasks::CancelRequested))
                .col(boolean_null(Tasks::Success))
                .col(text_null(Tasks::Message))
                .col(string_null(Tasks::RelatedSessionId))
                .col(timestamp_with_time_zone(Tasks::CreatedAt))
                .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                .col(timestamp_with_time_zone_null(Tasks::StartedAt))
                .col(timestamp_with_time_zone_null(Tasks::FinishedAt))
                .col(timestamp_with_time_zone_null(Tasks::PublishedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Tasks::Table, Tasks::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_tasks_user").table(Tasks::Table).col(Tasks::UserId).to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_tasks_state_published")
                .table(Tasks::Table)
                .col(Tasks::State)
                .col(Tasks::PublishedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_tasks_state_runner")
                .table(Tasks::Table)
                .col(Tasks::State)
                .col(Tasks::RunnerId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Runners::Table)
                .col(string(Runners::Id).primary_key())
                .col(timestamp_with_time_zone(Runners::StartedAt))
                .col(timestamp_with_time_zone(Runners::HeartbeatAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Runners::Table.into_iden(),
            Tasks::Table.into_iden(),
            JobSessions::Table.into_iden(),
            Jobs::Table.into_iden(),
            LogonSessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
