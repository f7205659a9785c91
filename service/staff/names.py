"""How staff pages name the flow's contacts, menus and options."""

from __future__ import annotations

from dataclasses import dataclass

from service.flowengine import Flow


@dataclass(frozen=True)
class FlowNames:
    """How staff pages name the flow's contacts, menus and options (English labels)."""

    contacts: dict[str, str]
    start: str
    menus: dict[str, str]
    options: dict[tuple[str, str], str]
    languages: tuple[str, ...]

    def contact(self, contact_id: str | None) -> str:
        return self.contacts.get(contact_id or "", contact_id or "")

    def menu(self, node: str | None) -> str:
        return self.menus.get(node or "", node or "")

    def option(self, node: str, key: str) -> str:
        reserved = {"0": "talk to a person", "*": "repeat", "#": "back"}
        if node == self.start:
            reserved["9"] = "español"
        label = self.options.get((node, key)) or reserved.get(key)
        return f"{key} · {label}" if label else key


def flow_names(flow: Flow | None) -> FlowNames:
    if flow is None:
        return FlowNames({}, "main", {}, {}, ("en", "es"))
    lang = flow.default_language
    menus = {flow.start: "Main menu"}
    options: dict[tuple[str, str], str] = {}
    for node in flow.nodes.values():
        for option in node.options:
            label = option.label.get(lang) or next(iter(option.label.values()), "")
            options[(node.id, option.key)] = label
            if option.goto and option.goto not in menus:
                menus[option.goto] = label[:1].upper() + label[1:]
    contacts = {
        contact.id: contact.short.get(lang) or contact.id for contact in flow.contacts.values()
    }
    return FlowNames(contacts, flow.start, menus, options, flow.languages)
