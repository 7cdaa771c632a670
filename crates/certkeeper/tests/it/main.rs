//! End-to-end tests: the real certkeeper binary on temporary homes.

mod agent;
pub mod apache;
pub mod bad_input;
mod boundary;
mod common;
mod corpus;
mod doctor;
pub mod egress;
mod egress_smuggling;
mod fleet;
mod formats;
mod granted;
mod late;
mod output;
mod packaging;
mod paths;
mod proxy;
mod real_files;
mod store;
