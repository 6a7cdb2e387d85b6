//! The embedded backend: an SQLite file for the store, results and bus; a folder for S3; and a
//! Bedrock batch emulator. One adapter file per service.

mod allowances;
pub mod bedrock_emulator;
pub mod bus;
pub mod db;
pub mod duplicates;
pub mod faults;
pub mod history;
mod index_lag;
pub mod local_model;
pub mod nights;
pub mod objects;
pub mod runtime_emulator;
pub mod store;
pub mod vision;
