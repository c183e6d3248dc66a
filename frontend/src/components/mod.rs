//! The designer's components.

pub mod api;
pub mod deploy;
pub mod field;
pub mod form;
pub mod join;
pub mod open;
pub mod panels;
pub mod trainer;
