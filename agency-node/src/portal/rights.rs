//! The survivor's rights in the portal: asking for a correction or an
//! erasure (a review step, then the request with the date the agency
//! answers by), seeing the answers and why an erasure must wait under a
//! legal hold, and reading everything held as a page ([`my_record`]; the
//! same content as the JSON download).

use super::*;
use crate::rights::{RequestKind, RequestStatus};
use crate::store::rights::RightsRequest;
use crate::vault::Part;

fn part_text(chrome: &Chrome, part: Part) -> String {
    match part.category() {
        Some(category) => category_text(chrome, category),
        None => chrome.t("retention-part-record"),
    }
}

fn kind_text(chrome: &Chrome, kind: RequestKind) -> String {
    chrome.t(&message_id("request-kind", kind.as_str()))
}

/// The parts a request can name, as checkboxes.
pub(super) fn part_choices(chrome: &Chrome) -> Vec<Choice> {
    Part::ALL
        .into_iter()
        .map(|part| Choice {
            value: part.as_str().to_owned(),
            label: part_text(chrome, part),
            selected: false,
        })
        .collect()
}

/// The survivor's requests as rows; `hold` is the reason of the legal hold
/// in force, shown on each open erasure.
pub(super) fn request_rows(
    chrome: &Chrome,
    requests: &[RightsRequest],
    hold: Option<&str>,
) -> Vec<RequestRow> {
    requests
        .iter()
        .map(|r| {
            let open = r.status == RequestStatus::Open;
            RequestRow {
                id: r.id.clone(),
                kind: kind_text(chrome, r.kind),
                parts: r.parts.iter().map(|p| part_text(chrome, *p)).collect(),
                details: r.details.clone(),
                asked: date_text(r.asked_at),
                when: match (open, r.answered_at) {
                    (false, Some(at)) => chrome.t1("request-answered-on", "date", &date_text(at)),
                    _ => chrome.t1("request-due", "date", &date_text(r.answer_due_at)),
                },
                status: chrome.t(&message_id("request-status", r.status.as_str())),
                status_code: r.status.as_str(),
                answer: r.answer.clone(),
                held: hold
                    .filter(|_| open && r.kind == RequestKind::Erasure)
                    .map(|reason| chrome.t1("request-held", "reason", reason)),
            }
        })
        .collect()
}

/// What the form asked for: kind, parts, words.
fn asked(form: &FormFields) -> Result<(RequestKind, Vec<Part>, Option<String>), NodeError> {
    let kind = form
        .get("kind")
        .and_then(RequestKind::parse)
        .ok_or_else(|| NodeError::bad_input("choose a correction or an erasure"))?;
    let parts = form
        .all("part")
        .into_iter()
        .map(|p| Part::parse(p).ok_or_else(|| NodeError::bad_input("unknown part of the record")))
        .collect::<Result<Vec<_>, _>>()?;
    let (parts, details) = crate::rights::checked_request(kind, &parts, form.get("details"))?;
    Ok((kind, parts, details))
}

/// `POST /requests`: the request to review before it is sent.
pub(super) async fn request_review(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (_who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (kind, parts, details) = match asked(&form) {
        Ok(asked) => asked,
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let chrome = portal.chrome(&visit, "/home");
    let due = now_millis() + portal.node.answer_requests_within;
    let mut hidden = vec![("kind", kind.as_str().to_owned())];
    hidden.extend(parts.iter().map(|p| ("part", p.as_str().to_owned())));
    if let Some(details) = &details {
        hidden.push(("details", details.clone()));
    }
    let page = ConfirmPage {
        heading: chrome.t(&message_id("request-confirm-heading", kind.as_str())),
        summary: details.unwrap_or_default(),
        parts: parts.iter().map(|p| part_text(&chrome, *p)).collect(),
        purposes: Vec::new(),
        until: chrome.t1("request-due", "date", &date_text(due)),
        action: "/requests/confirm",
        hidden,
        button: chrome.t(&message_id("request-send", kind.as_str())),
        chrome,
    };
    html(&visit, StatusCode::OK, page)
}

/// `POST /requests/confirm`: the request sent, with the date it will be
/// answered by.
pub(super) async fn request_confirm(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let visit = match portal.visit(&headers, None).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let (who, form) = match signed_in_form(&portal, &visit, &headers, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let sent = match asked(&form) {
        Ok((kind, parts, details)) => {
            crate::rights::ask(
                &portal.node,
                &who.survivor_id,
                kind,
                &parts,
                details.as_deref(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match sent {
        Ok(request) => {
            let chrome = portal.chrome(&visit, "/home");
            html(
                &visit,
                StatusCode::OK,
                DonePage {
                    message: chrome.t1("request-done", "date", &date_text(request.answer_due_at)),
                    chrome,
                    receipt_id: None,
                },
            )
        }
        Err(err) => error_page(&portal, &visit, err.into()),
    }
}

/// `GET /my-record`: everything held, as a page to read (the download's
/// content; audited the same way).
pub(super) async fn my_record(
    State(portal): State<Arc<Portal>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let visit = match portal.visit(&headers, q.lang.as_deref()).await {
        Ok(visit) => visit,
        Err(refused) => return refused,
    };
    let who = match portal.signed_in(&visit).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let held = match everything_held(&portal.node, &who.survivor_id).await {
        Ok(held) => held,
        Err(err) => return error_page(&portal, &visit, err.into()),
    };
    let chrome = portal.chrome(&visit, "/my-record");
    let sections = match held {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| {
                let mut body = String::new();
                render(&chrome, name, value, &mut body);
                (field_label(&chrome, name), body)
            })
            .collect(),
        _ => Vec::new(),
    };
    let intro = chrome.t1(
        "my-record-intro",
        "agency",
        &portal.agency_name(&portal.node.agency),
    );
    html(
        &visit,
        StatusCode::OK,
        MyRecordPage {
            chrome,
            intro,
            sections,
        },
    )
}

/// A field's label: its message (`export-<name>`) when the portal has one,
/// else the name itself in words (`given_name` reads "given name").
fn field_label(chrome: &Chrome, name: &str) -> String {
    if let Ok(category) = name.to_ascii_uppercase().parse::<Category>() {
        return category_text(chrome, category);
    }
    let id = format!("export-{}", kebab(name));
    let label = chrome.t(&id);
    if label != id {
        return label;
    }
    kebab(name).replace('-', " ")
}

/// `validFrom` and `given_name` as `valid-from` and `given-name`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for HTML, escaped ([`exchange_service::pages::escape_html`]).
fn escape(text: &str, out: &mut String) {
    out.push_str(&exchange_service::pages::escape_html(text));
}

/// A closed-list value in words where the portal has them (categories,
/// purposes, parts), else as stored.
fn value_text(chrome: &Chrome, field: &str, value: &str) -> String {
    match field {
        "categories" | "category" | "disclosed" | "withheld" => value
            .parse::<Category>()
            .map_or_else(|_| value.to_owned(), |c| category_text(chrome, c)),
        "purposes" | "purpose" => value
            .parse::<Purpose>()
            .map_or_else(|_| value.to_owned(), |p| purpose_text(chrome, p)),
        "part" | "parts" => {
            Part::parse(value).map_or_else(|| value.to_owned(), |p| part_text(chrome, p))
        }
        "service" | "kind" => value.parse::<exchange_schema::ServiceKind>().map_or_else(
            |_| value.to_owned(),
            |k| chrome.t(&message_id("service", k.as_str())),
        ),
        "status" => value
            .parse::<exchange_schema::ReferralStatus>()
            .map_or_else(
                |_| value.to_owned(),
                |k| chrome.t(&message_id("referral-status", k.as_str())),
            ),
        _ => value.to_owned(),
    }
}

/// One value as escaped HTML: objects as definition lists, lists as lists,
/// nothing (null, empty) as a dash.
fn render(chrome: &Chrome, field: &str, value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null => out.push('—'),
        Value::Bool(b) => escape(&chrome.t(if *b { "yes" } else { "no" }), out),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape(&value_text(chrome, field, s), out),
        Value::Array(items) if items.is_empty() => out.push('—'),
        Value::Array(items) => {
            out.push_str("<ol>");
            for item in items {
                out.push_str("<li>");
                render(chrome, field, item, out);
                out.push_str("</li>");
            }
            out.push_str("</ol>");
        }
        Value::Object(fields) if fields.is_empty() => out.push('—'),
        Value::Object(fields) => {
            out.push_str("<dl>");
            for (name, value) in fields {
                out.push_str("<dt>");
                escape(&field_label(chrome, name), out);
                out.push_str("</dt><dd>");
                render(chrome, name, value, out);
                out.push_str("</dd>");
            }
            out.push_str("</dl>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> Chrome {
        Chrome {
            lang: Lang::En,
            csrf: String::new(),
            signed_in: true,
            agency_name: "Test".into(),
            picker_action: "/my-record".into(),
        }
    }

    #[test]
    fn the_readable_page_escapes_everything_the_survivor_or_staff_wrote() {
        let mut out = String::new();
        let value = serde_json::json!({
            "caseNotes": [{ "body": "<script>alert('x')</script> & \"more\"" }],
        });
        render(&chrome(), "record", &value, &mut out);
        assert!(!out.contains("<script>"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"),
            "{out}"
        );
    }

    #[test]
    fn field_names_read_as_words_and_codes_as_their_messages() {
        let chrome = chrome();
        assert_eq!(kebab("validFrom"), "valid-from");
        assert_eq!(field_label(&chrome, "given_name"), "Given name");
        assert_eq!(field_label(&chrome, "no_such_field"), "no such field");
        assert_eq!(
            value_text(&chrome, "service", "LEGAL_AID"),
            chrome.t("service-legal-aid")
        );
        assert_eq!(
            value_text(&chrome, "categories", "HEALTH"),
            category_text(&chrome, Category::Health)
        );
        assert_eq!(value_text(&chrome, "status", "HEALTH"), "HEALTH");
    }
}
