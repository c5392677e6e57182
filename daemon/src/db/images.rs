//! Disk images.

use nuage_shared::Image;
use rusqlite::{params, Connection, OptionalExtension};

use super::refusal::{immediate, refuse};
use super::{DbError, Outcome, Refusal};

/// An image with where its file lies (never sent to clients).
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub image: Image,
    pub path: String,
}

const COLUMNS: &str = "id, name, format, virtual_size_bytes, os, created_at, path";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        image: Image {
            id: super::id(r, 0)?,
            name: r.get(1)?,
            format: r.get(2)?,
            virtual_size_bytes: r.get::<_, u64>(3)?,
            os: r.get(4)?,
            created_at: r.get(5)?,
        },
        path: r.get(6)?,
    })
}

pub fn insert(c: &Connection, row: &ImageRow) -> Result<(), DbError> {
    let i = &row.image;
    c.execute(
        "INSERT INTO images (id, name, format, virtual_size_bytes, os, created_at, path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            i.id.as_str(),
            i.name,
            i.format,
            i.virtual_size_bytes as i64,
            i.os,
            i.created_at,
            row.path
        ],
    )?;
    Ok(())
}

pub fn list(c: &Connection) -> Result<Vec<ImageRow>, DbError> {
    let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM images ORDER BY name"))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get(c: &Connection, id: &str) -> Result<Option<ImageRow>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM images WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

pub fn name_taken(c: &Connection, name: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT EXISTS(SELECT 1 FROM images WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?)
}

pub fn id_by_name(c: &Connection, name: &str) -> Result<Option<String>, DbError> {
    Ok(
        c.query_row("SELECT id FROM images WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

pub fn in_use(c: &Connection, id: &str) -> Result<i64, DbError> {
    Ok(
        c.query_row("SELECT COUNT(*) FROM vms WHERE image_id = ?1", [id], |r| {
            r.get(0)
        })?,
    )
}

pub fn delete(c: &Connection, id: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM images WHERE id = ?1", [id])?;
    Ok(())
}

/// Deletes image `id` unless a server still stands on it; returns its file's path.
pub fn delete_unused(c: &mut Connection, id: &str) -> Outcome<String> {
    immediate(c, |tx| {
        let Some(row) = get(tx, id)? else {
            return refuse(Refusal::NotFound);
        };
        let users = usize::try_from(in_use(tx, id)?).unwrap_or(usize::MAX);
        if users > 0 {
            return refuse(Refusal::InUse {
                count: users,
                of: "server(s)",
            });
        }
        delete(tx, id)?;
        Ok(Ok(row.path))
    })
}
