//! The designer's components.

pub mod deploy;
pub mod field;
pub mod form;
pub mod panels;
