//! Contacts: the people a workspace supports, with tags, custom attributes and a notes timeline.
//!
//! E-mail addresses (and external ids) are unique per workspace, compared case-insensitively.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{Action, Method};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::types::{Cursor, Doc, Email, Id, Limit, Page, Tag, Text, Timestamp, clean_tags, patch};
use crate::{Error, Result, Scope};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    pub id: Id,
    pub workspace_id: Id,
    /// The site the contact was first seen on.
    pub site_id: Option<Id>,
    pub name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    /// Custom attributes: any JSON values by name.
    pub attributes: Map<String, Value>,
    /// The notes timeline, oldest first (single-contact responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    pub id: Id,
    pub body: String,
    /// The name of the API key (or agent) that wrote it.
    pub author: String,
    pub created_at: Timestamp,
}

/// The stored, editable fields of a contact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactFields {
    pub name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

impl From<&Contact> for ContactFields {
    fn from(c: &Contact) -> Self {
        ContactFields {
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            external_id: c.external_id.clone(),
            tags: c.tags.clone(),
            attributes: c.attributes.clone(),
        }
    }
}

/// How to list contacts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactFilter {
    /// Words matched as prefixes against name, e-mail and tags.
    pub q: Option<String>,
    pub before: Option<Cursor>,
    pub limit: Limit,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListContacts {
    /// Search words, matched as prefixes of name, e-mail and tags.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub q: Option<String>,
    #[serde(default)]
    pub limit: Limit,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["email"]}, {"required": ["name"]}, {"required": ["phone"]}, {"required": ["external_id"]}
]))]
pub struct CreateContact {
    pub name: Option<Text<200>>,
    pub email: Option<Email>,
    pub phone: Option<Text<50>>,
    pub external_id: Option<Text<200>>,
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub tags: Vec<Tag>,
    /// Custom attributes: at most 100, named with 1 to 64 characters.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 100, "propertyNames" = {"minLength": 1, "maxLength": 64}))]
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactId {
    pub id: Id,
}

/// A partial update: absent fields stay as they are, `null` clears a field.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["name"]}, {"required": ["email"]}, {"required": ["phone"]}, {"required": ["external_id"]},
    {"required": ["tags"]}, {"required": ["attributes"]}, {"required": ["note"]}
]))]
pub struct UpdateContact {
    pub id: Id,
    #[serde(default, deserialize_with = "patch")]
    pub name: Option<Option<Text<200>>>,
    #[serde(default, deserialize_with = "patch")]
    pub email: Option<Option<Email>>,
    #[serde(default, deserialize_with = "patch")]
    pub phone: Option<Option<Text<50>>>,
    #[serde(default, deserialize_with = "patch")]
    pub external_id: Option<Option<Text<200>>>,
    /// Replaces the tag list.
    #[schemars(length(max = 100))]
    pub tags: Option<Vec<Tag>>,
    /// Merged into the custom attributes; a `null` value removes that attribute.
    #[schemars(extend("maxProperties" = 100, "propertyNames" = {"minLength": 1, "maxLength": 64}))]
    pub attributes: Option<Map<String, Value>>,
    /// Appended to the notes timeline.
    pub note: Option<Text<10_000>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTags {
    pub id: Id,
    #[schemars(length(min = 1, max = 100))]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    pub id: Id,
    pub note: Text<10_000>,
}

fn check_attributes(attributes: &Map<String, Value>) -> Result<()> {
    if attributes.len() > 100 {
        return Err(Error::validation(
            "attributes",
            "a contact holds at most 100 attributes",
        ));
    }
    if let Some(key) = attributes
        .keys()
        .find(|k| k.is_empty() || k.chars().count() > 64)
    {
        return Err(Error::validation(
            "attributes",
            format!("attribute name `{key}` must have 1 to 64 characters"),
        ));
    }
    if serde_json::to_string(attributes).map_or(0, |s| s.len()) > 16 * 1024 {
        return Err(Error::validation(
            "attributes",
            "attributes must serialise to at most 16 KiB",
        ));
    }
    Ok(())
}

impl ContactFields {
    /// A contact must keep something to recognise it by.
    fn check_identifiable(&self) -> Result<()> {
        if self.name.is_none()
            && self.email.is_none()
            && self.phone.is_none()
            && self.external_id.is_none()
        {
            return Err(Error::validation(
                "email",
                "a contact needs at least an email, name, phone or external_id",
            ));
        }
        Ok(())
    }

    fn parse(input: CreateContact) -> Result<Self> {
        let fields = ContactFields {
            name: input.name.map(Text::into_string),
            email: input.email,
            phone: input.phone.map(Text::into_string),
            external_id: input.external_id.map(Text::into_string),
            tags: clean_tags("tags", &[], &input.tags)?,
            attributes: input.attributes,
        };
        check_attributes(&fields.attributes)?;
        fields.check_identifiable()?;
        Ok(fields)
    }
}

/// Checks that no other contact of the workspace holds the e-mail or external id.
fn check_unique(
    w: &dyn Writes,
    workspace: Id,
    id: Option<Id>,
    fields: &ContactFields,
) -> Result<()> {
    if let Some(email) = &fields.email
        && let Some(other) = w.contact_by_email(workspace, &email.normalized())?
        && Some(other.id) != id
    {
        return Err(Error::validation(
            "email",
            format!(
                "contact {} already has the email `{}`",
                other.id,
                email.as_str()
            ),
        ));
    }
    if let Some(ext) = &fields.external_id
        && let Some(other) = w.contact_id_by_external_id(workspace, ext)?
        && Some(other) != id
    {
        return Err(Error::validation(
            "external_id",
            format!("contact {other} already has the external_id `{ext}`"),
        ));
    }
    Ok(())
}

/// Loads a contact of the workspace, or 404.
fn load(w: &dyn Writes, workspace: Id, id: Id) -> Result<Contact> {
    w.contact(workspace, id)?
        .ok_or_else(|| Error::not_found("contact", id))
}

/// Finds the workspace's contact with this e-mail, or creates it (used by ticket creation).
pub(crate) fn find_or_create_by_email(
    w: &mut dyn Writes,
    workspace: Id,
    site: Id,
    email: &Email,
    name: Option<String>,
    now: Timestamp,
) -> Result<Contact> {
    if let Some(contact) = w.contact_by_email(workspace, &email.normalized())? {
        return Ok(contact);
    }
    let fields = ContactFields {
        name,
        email: Some(email.clone()),
        ..ContactFields::default()
    };
    let id = w.insert_contact(workspace, Some(site), &fields, now)?;
    load(w, workspace, id)
}

/// Appends tags to a contact (cleaned, deduplicated, existing order kept): `contacts.tags.add`
/// and proactive rules. Nothing is written when the tags are refused.
pub(crate) fn append_tags<T: AsRef<str>>(
    w: &mut dyn Writes,
    workspace: Id,
    id: Id,
    tags: &[T],
) -> Result<Contact> {
    let current = load(w, workspace, id)?;
    let mut fields = ContactFields::from(&current);
    fields.tags = clean_tags("tags", &current.tags, tags)?;
    if fields.tags != current.tags {
        w.update_contact(workspace, current.id, &fields, Timestamp::now())?;
    }
    load(w, workspace, current.id)
}

impl Opsiq {
    /// A page of contacts (without notes), as the store keeps them rendered.
    pub fn list_contacts(&self, call: &Call, input: ListContacts) -> Result<Page<Doc<Contact>>> {
        let filter = ContactFilter {
            q: input
                .q
                .map(|q| q.trim().to_string())
                .filter(|q| !q.is_empty()),
            before: input.cursor,
            limit: input.limit,
        };
        if filter.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::parameter("q", "must be at most 200 characters"));
        }
        let workspace = call.principal.workspace_id;
        let rows = self.read(|r| r.contact_docs(workspace, &filter))?;
        Ok(Page::from_rows(rows, filter.limit, |c| c.id().0))
    }

    pub fn create_contact(&self, call: &Call, input: CreateContact) -> Result<Contact> {
        let fields = ContactFields::parse(input)?;
        let (workspace, site) = (call.principal.workspace_id, call.principal.site_id);
        self.write_audited(call, move |w| {
            check_unique(w, workspace, None, &fields)?;
            let id = w.insert_contact(workspace, Some(site), &fields, Timestamp::now())?;
            load(w, workspace, id)
        })
    }

    pub fn get_contact(&self, call: &Call, input: ContactId) -> Result<Contact> {
        let workspace = call.principal.workspace_id;
        self.read(|r| r.contact(workspace, input.id))?
            .ok_or_else(|| Error::not_found("contact", input.id))
    }

    pub fn update_contact(&self, call: &Call, input: UpdateContact) -> Result<Contact> {
        let workspace = call.principal.workspace_id;
        let author = call.author();
        let name = input.name.map(|v| v.map(Text::into_string));
        let phone = input.phone.map(|v| v.map(Text::into_string));
        let external_id = input.external_id.map(|v| v.map(Text::into_string));
        let tags = input
            .tags
            .map(|t| clean_tags("tags", &[], &t))
            .transpose()?;
        let note = input.note.map(Text::into_string);
        let nothing = name.is_none()
            && input.email.is_none()
            && phone.is_none()
            && external_id.is_none()
            && tags.is_none()
            && input.attributes.is_none()
            && note.is_none();
        if nothing {
            return Err(Error::validation(
                "params",
                "give at least one of name, email, phone, external_id, tags, attributes, note",
            ));
        }
        self.write_audited(call, move |w| {
            let current = load(w, workspace, input.id)?;
            let mut fields = ContactFields::from(&current);
            if let Some(v) = name {
                fields.name = v;
            }
            if let Some(v) = input.email {
                fields.email = v;
            }
            if let Some(v) = phone {
                fields.phone = v;
            }
            if let Some(v) = external_id {
                fields.external_id = v;
            }
            if let Some(v) = tags {
                fields.tags = v;
            }
            if let Some(attributes) = input.attributes {
                // The update itself keeps to the documented limits, even where it only
                // removes (a `null` for a name no attribute has).
                check_attributes(&attributes)?;
                for (k, v) in attributes {
                    if v.is_null() {
                        fields.attributes.remove(&k);
                    } else {
                        fields.attributes.insert(k, v);
                    }
                }
                check_attributes(&fields.attributes)?;
            }
            fields.check_identifiable()?;
            check_unique(w, workspace, Some(current.id), &fields)?;
            let now = Timestamp::now();
            w.update_contact(workspace, current.id, &fields, now)?;
            if let Some(body) = note {
                w.insert_note(current.id, &body, &author, now)?;
            }
            load(w, workspace, current.id)
        })
    }

    pub fn add_contact_tags(&self, call: &Call, input: AddTags) -> Result<Contact> {
        let workspace = call.principal.workspace_id;
        if input.tags.is_empty() {
            return Err(Error::validation("tags", "give at least one tag"));
        }
        clean_tags("tags", &[], &input.tags)?;
        self.write_audited(call, move |w| {
            append_tags(w, workspace, input.id, &input.tags)
        })
    }

    pub fn add_contact_note(&self, call: &Call, input: AddNote) -> Result<Contact> {
        let workspace = call.principal.workspace_id;
        let author = call.author();
        let body = input.note.into_string();
        self.write_audited(call, move |w| {
            let current = load(w, workspace, input.id)?;
            w.insert_note(current.id, &body, &author, Timestamp::now())?;
            load(w, workspace, current.id)
        })
    }
}

/// The contact actions of the catalog.
pub fn actions() -> Vec<Action> {
    use Scope::{ContactsRead, ContactsWrite};
    vec![
        Action::doc_list("contacts.list", ContactsRead, "contact", "List contacts in the active site scope.", |op, call, i| {
            op.list_contacts(call, i)
        })
        .route(Method::Get, "/contacts")
        .describe("Newest first. `q` matches words as prefixes of name, email and tags; pass `next_cursor` back as `cursor` for the next page."),
        Action::new("contacts.create", ContactsWrite, "contact", "Create a contact.", |op, call, i| op.create_contact(call, i))
            .route(Method::Post, "/contacts")
            .mutating(true)
            .describe("The email is unique per workspace (case-insensitive); a duplicate is 422 naming `email`.")
            .example(json!({"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["trial"]})),
        Action::new("contacts.get", ContactsRead, "contact", "Fetch one contact by id.", |op, call, i| op.get_contact(call, i))
            .route(Method::Get, "/contacts/{id}"),
        Action::new("contacts.update", ContactsWrite, "contact", "Update contact fields, tags, or notes.", |op, call, i| {
            op.update_contact(call, i)
        })
        .route(Method::Patch, "/contacts/{id}")
        .route(Method::Put, "/contacts/{id}")
        .mutating(false)
        .describe("Absent fields stay unchanged and `null` clears one. `tags` replaces the tag list, `attributes` is merged (a `null` value removes an attribute), `note` appends to the timeline.")
        .example(json!({"name": "Ada King", "phone": "+44 20 7946 0000", "attributes": {"plan": "annual"}})),
        Action::new("contacts.tags.add", ContactsWrite, "contact", "Append tags to a contact.", |op, call, i| {
            op.add_contact_tags(call, i)
        })
        .route(Method::Post, "/contacts/{id}/tags")
        .mutating(false)
        .describe("Tags are lower-cased and deduplicated; existing tags keep their order.")
        .example(json!({"tags": ["vip", "renewal"]})),
        Action::new("contacts.notes.add", ContactsWrite, "contact", "Append a note to a contact timeline.", |op, call, i| {
            op.add_contact_note(call, i)
        })
        .route(Method::Post, "/contacts/{id}/notes")
        .mutating(false)
        .describe("The note's author is the calling key's name.")
        .example(json!({"note": "Customer asked for annual billing."})),
    ]
}
