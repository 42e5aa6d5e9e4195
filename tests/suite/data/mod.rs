//! Data files in the library (`files`) and tables through the binary: column roles, missing
//! cells, preprocessing metadata (`tables`); separators, number formats, headers, line endings
//! (`table_formats`).

mod files;
mod table_formats;
mod tables;
