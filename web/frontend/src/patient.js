// The patient's screens: my documents (record and masks), consents, blocked professionals,
// access history. They talk to /webmail/api/patient (web/webmail/patient_routes.py); the
// server sends routing data and decisions only, and a document's title is read here, in the
// browser, by opening it with the patient's keys.

export function patientScreens(ui) {
  const { h, field, status, render, api, t, when, stale, reasonOf, openMessage } = ui;

  function refusal(error) {
    return status(t("refusedAction", { reason: reasonOf(error) }), "error");
  }

  async function load(title, path) {
    const main = render(title, status(t("loading")));
    try {
      return [main, await api("GET", path)];
    } catch (error) {
      main.replaceChildren(main.firstChild, status(reasonOf(error), "error"));
      return [main, null];
    }
  }

  // -- my documents -------------------------------------------------------------------------

  async function documentsScreen(mine, flash = null) {
    const [main, documents] = await load(t("documents"), "/patient/documents");
    if (!documents || stale(mine)) return;
    const groups = new Map();
    for (const doc of documents) {
      const opened = await openMessage(doc.id);
      if (stale(mine)) return;
      const title = opened.message?.subject || t("noSubject");
      if (!groups.has(doc.kind)) groups.set(doc.kind, []);
      groups.get(doc.kind).push(documentCard(doc, title, mine));
    }
    const sections = [...groups.entries()].map(([kind, cards]) =>
      h("section", { "aria-labelledby": `kind-${kind}` }, h("h2", { id: `kind-${kind}` }, t(`kind_${kind}`)), h("ul", { class: "cards" }, cards)),
    );
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("documentsIntro")),
      flash || "",
      ...(sections.length ? sections : [h("p", {}, t("noDocuments"))]),
    );
  }

  function documentCard(doc, title, mine) {
    const masked = doc.masked_from.map((who) =>
      h(
        "li",
        {},
        who,
        " ",
        h("button", { type: "button", class: "link", onclick: () => setMask(doc.id, [who], false, mine), "aria-label": t("unmaskFrom", { who }) }, t("unmask")),
      ),
    );
    const form = h(
      "form",
      { class: "inline", onsubmit: (event) => {
        event.preventDefault();
        const who = new FormData(event.target).get("professional").trim();
        if (who) setMask(doc.id, [who], true, mine);
      } },
      field(t("maskFrom"), { name: "professional", type: "email", required: true, autocomplete: "off" }),
      h("button", { type: "submit" }, t("mask")),
    );
    return h(
      "li",
      { class: "card", "data-document": doc.id },
      h("h3", {}, h("a", { href: `#/read/${doc.id}` }, title)),
      h("p", { class: "meta" }, `${t("from")} ${doc.from} · ${when(doc.date)}`),
      masked.length ? h("div", {}, h("p", {}, t("maskedFrom")), h("ul", {}, masked)) : h("p", { class: "meta" }, t("notMasked")),
      form,
    );
  }

  async function setMask(id, professionals, masked, mine) {
    let flash;
    try {
      await api("POST", `/patient/documents/${encodeURIComponent(id)}/mask`, { professionals, masked });
      flash = status(masked ? t("maskedOk") : t("unmaskedOk"), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await documentsScreen(mine, flash);
  }

  // -- blocked professionals ----------------------------------------------------------------

  async function blockedScreen(mine, flash = null) {
    const [main, blocks] = await load(t("blocked"), "/patient/blocks");
    if (!blocks || stale(mine)) return;
    const rows = blocks.blocked.map((who) =>
      h("li", {}, who, " ", h("button", { type: "button", onclick: () => change("DELETE", who, mine), "aria-label": t("unblockWho", { who }) }, t("unblock"))),
    );
    const form = h(
      "form",
      { class: "card", onsubmit: (event) => {
        event.preventDefault();
        const who = new FormData(event.target).get("professional").trim();
        if (who) change("POST", who, mine);
      } },
      h("h2", {}, t("blockTitle")),
      h("p", {}, t("blockIntro")),
      field(t("professionalAddress"), { name: "professional", type: "email", required: true, autocomplete: "off" }),
      h("button", { type: "submit" }, t("block")),
    );
    main.replaceChildren(
      main.firstChild,
      flash || "",
      blocks.treating_doctor ? h("p", { class: "status info" }, t("treatingDoctor", { who: blocks.treating_doctor })) : "",
      h("section", { class: "card" }, h("h2", {}, t("blockedList")), rows.length ? h("ul", { class: "plain" }, rows) : h("p", {}, t("noneBlocked"))),
      form,
    );
  }

  async function change(method, who, mine) {
    let flash;
    try {
      if (method === "POST") await api("POST", "/patient/blocks", { professional: who });
      else await api("DELETE", `/patient/blocks/${encodeURIComponent(who)}`);
      flash = status(method === "POST" ? t("blockedOk", { who }) : t("unblockedOk", { who }), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await blockedScreen(mine, flash);
  }

  // -- consents -----------------------------------------------------------------------------

  async function consentsScreen(mine) {
    const [main, consents] = await load(t("consents"), "/patient/consents");
    if (!consents || stale(mine)) return;
    const scope = (c) => (c.scope === "record" ? t("scopeRecord") : c.scope === "document" ? t("scopeDocument") : t("scopeCategories"));
    const pending = consents.pending.map((c) =>
      h(
        "li",
        { class: "card", "data-consent": c.id },
        h("h3", {}, c.professional),
        h("dl", { class: "headers" }, h("dt", {}, t("purpose")), h("dd", {}, c.purpose), h("dt", {}, t("scope")), h("dd", {}, scope(c)), h("dt", {}, t("duration")), h("dd", {}, t("days", { n: c.duration_days })), h("dt", {}, t("date")), h("dd", {}, when(c.requested_at))),
      ),
    );
    const grants = consents.grants.map((g) =>
      h(
        "li",
        { class: "card", "data-grant": g.id },
        h("h3", {}, g.professional),
        h("p", {}, `${g.purpose} · ${scope(g)}`),
        h("p", { class: "meta" }, t("grantUntil", { from: when(g.starts_at), to: when(g.ends_at) })),
      ),
    );
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("consentsIntro")),
      h("section", {}, h("h2", {}, t("pendingConsents")), pending.length ? h("ul", { class: "cards" }, pending) : h("p", {}, t("nonePending"))),
      h("section", {}, h("h2", {}, t("activeGrants")), grants.length ? h("ul", { class: "cards" }, grants) : h("p", {}, t("noneGranted"))),
    );
  }

  // -- access history -----------------------------------------------------------------------

  async function historyScreen(mine) {
    const [main, history] = await load(t("history"), "/patient/history");
    if (!history || stale(mine)) return;
    const verdict = history.verified
      ? status(t("historyVerified", { n: history.entries.length }), "ok")
      : status(t("historyBroken", { n: history.problems.length }), "error");
    const me = ui.address().toLowerCase();
    // An entry names a document by its envelope id: words are kinder than 32 hex digits.
    const about = (e) => e.details.professional || (/^[0-9a-f]{32}$/.test(e.subject) ? t("aDocument") : e.subject);
    const rows = [...history.entries].reverse().map((e) =>
      h(
        "tr",
        { "data-action": e.action },
        h("td", { "data-label": t("date") }, when(e.at)),
        h("td", { "data-label": t("who") }, e.actor.toLowerCase() === me ? t("you") : e.actor),
        h("td", { "data-label": t("what") }, t(`action_${e.action.replace(/-/g, "_")}`)),
        h("td", { "data-label": t("about") }, about(e)),
      ),
    );
    main.replaceChildren(
      main.firstChild,
      verdict,
      rows.length
        ? h(
            "div",
            { class: "scroll", tabindex: "0", role: "region", "aria-label": t("history") },
            h(
              "table",
              { class: "history" },
              h("caption", {}, t("historyCaption")),
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("date")), h("th", { scope: "col" }, t("who")), h("th", { scope: "col" }, t("what")), h("th", { scope: "col" }, t("about")))),
              h("tbody", {}, rows),
            ),
          )
        : h("p", {}, t("historyEmpty")),
    );
  }

  return { documentsScreen, blockedScreen, consentsScreen, historyScreen };
}
