//! HTTP side of the task queue: the Veeam Enterprise Manager face (`veeam`), the Daytona face
//! (`daytona`) and the Vercel Sandbox face (`vercel`, v2 so far); what the token faces share
//! (`bearer`, `query`, `ids`, `db_error`, the task resource `tasks`); passwords and the user
//! bootstrap, settings, and `Application`, which wires the embedded or distributed mode.

pub mod admin;
pub mod answers;
pub mod bearer;
pub mod credentials;
pub mod daytona;
pub mod db_error;
pub mod ids;
pub mod origin;
pub mod passwords;
pub mod query;
pub mod settings;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod veeam;
pub mod vercel;
pub mod views;
