//! End-to-end tests: the real certkeeper binary on temporary homes.

mod agent;
mod bad_input;
mod common;
mod corpus;
mod doctor;
mod egress;
mod formats;
mod packaging;
mod paths;
mod store;
