"""Keyword tables for the offline rule-based model (``offline_rules``).

Every pattern is matched against *folded* text: Unicode-decomposed, accents removed and casefolded
(``Rückerstattung`` -> ``ruckerstattung``, ``Où`` -> ``ou``, ``ß`` -> ``ss``). Write patterns in that
form. A space in a pattern matches a run of whitespace (" ?" an optional one), so never put a
literal space inside a character class. Every pattern must start at a word boundary but may end
mid-word, so ``rembours`` also matches ``remboursement``. Each table is compiled into one alternation.
"""

from __future__ import annotations

from agent.schemas import Intent

# Text that tries to instruct the model instead of talking to a human. Always spam.
INJECTION: tuple[str, ...] = (
    r"ignor(e|ez|iere|a)( all| any| the| your)* (previous|prior|above|earlier|preceding) "
    r"(instructions|rules|prompts|directions)",
    r"disregard( all| any| the| your)* (previous|prior|above|earlier) ",
    r"(?m:^\W*(system|assistant|developer) ?:)",
    r"you are now (the|a|an|in) ",
    r"do not (ask|notify|tell|inform|involve) (a |any )?(human|reviewer|operator|anyone)",
    r"ignoriere (alle )?(vorherigen|bisherigen) (anweisungen|instruktionen)",
    r"ignore[sz]? (toutes )?les instructions precedentes",
    r"ignora (todas )?las instrucciones anteriores",
    r"new instructions ?:",
)

LEGAL_THREAT: tuple[str, ...] = (
    r"(my|our) (lawyer|attorney|solicitor|legal team)",
    r"legal (action|steps|proceedings)",
    r"small claims",
    r"sue (you|northwind)",
    r"take (you|this|it) to court",
    r"(rechts)?anwalt",
    r"rechtliche schritte",
    r"verklagen",
    r"vor gericht",
    r"avocat",
    r"poursuites",
    r"action en justice",
    r"mise en demeure",
    r"abogad[oa]",
    r"acciones legales",
    r"demandar(les|los)?\b",
)

URGENT: tuple[str, ...] = (
    r"urgent",  # also urgently, urgente, urgence
    r"asap\b",
    r"as soon as possible",
    r"immediately",
    r"right away",
    r"dringend",
    r"sofort",
    r"umgehend",
    r"immediatement",
    r"au plus vite",
    r"des que possible",
    r"inmediatamente",
    r"lo antes posible",
    r"cuanto antes",
)

# Intent keyword tables. Spam and newsletters are checked first with a threshold (see
# offline_rules); the others compete by hit count, ties broken by INTENT_PRIORITY.
INTENT_KEYWORDS: dict[Intent, tuple[str, ...]] = {
    Intent.SPAM: (
        r"verify your (account|identity|mailbox|email|password)",
        r"(account|mailbox) (will be |has been )?(suspended|disabled|locked|closed)",
        r"(avoid|prevent) (the )?suspension",
        r"unusual (sign-?in|login|activity)",
        r"permanently (disabled|deleted|closed)",
        r"you('ve| have) (won|been selected)",
        r"claim your (prize|reward|gift)",
        r"gift card",
        r"act now",
        r"processing fee",
        r"click here to (verify|claim|confirm|login)",
        r"congratulations",
        r"bitcoin|crypto ?currency",
        r"bestatigen sie ihr konto",
        r"verifiez votre compte",
        r"verifique su cuenta",
        r"ha ganado",
    ),
    Intent.NEWSLETTER: (
        r"unsubscribe",
        r"view (this email )?in (your )?browser",
        r"manage (your )?(email )?preferences",
        r"newsletter",
        r"you are receiving this",
        r"you('re| are) receiving (this|our)",
        r"abbestellen",
        r"im browser ansehen",
        r"sie erhalten diese",
        r"se desabonner|desinscri",
        r"darse de baja",
    ),
    Intent.INVOICE: (
        r"invoice (no\b|nr\b|number|#|date)",
        r"attached invoice",
        r"amount due",
        r"(payment|balance) due",
        r"due date",
        r"payment terms",
        r"net \d{2}\b",
        r"remit",
        r"rechnungs(nummer|datum|betrag)",
        r"zahlbar bis",
        r"numero de facture|facture n",
        r"montant du\b",
        r"factura n",
        r"importe (total|adeudado|pendiente)",
    ),
    Intent.CANCELLATION: (
        r"cancel",  # cancel, cancellation, cancelar, cancelacion
        r"annul",
        r"stornier",
        r"storno",
        r"kundig",
        r"resili",
        r"dar de baja",
        r"anular",
    ),
    Intent.REFUND_REQUEST: (
        r"refund",
        r"money back",
        r"reimburs",
        r"charged (twice|double|for)",
        r"overcharged",
        r"sent (it |them )?back",
        r"ruckerstatt",
        r"erstatten",
        r"geld zuruck",
        r"zuruckgeschickt",
        r"rembours",
        r"renvoye",
        r"reembols",
        r"devolv",
        r"devolucion",
    ),
    Intent.COMPLAINT: (
        r"complain",
        r"disappointed",
        r"unacceptable",
        r"terrible",
        r"awful",
        r"worst",
        r"rude",
        r"poor (service|quality)",
        r"not the standard",
        r"defective",
        r"faulty",
        r"damaged",
        r"crushed",
        r"mildew",
        r"furious",
        r"outrageous",
        r"beschwerde",
        r"enttauscht",
        r"unverschamt",
        r"inakzeptabel",
        r"defekt",
        r"mangelhaft",
        r"decu",
        r"plainte",
        r"reclamation",
        r"inacceptable",
        r"queja",
        r"reclamacion",
        r"inaceptable",
        r"decepcionad",
        r"defectuos",
    ),
    Intent.ORDER_STATUS: (
        r"where is my (order|parcel|package)",
        r"order status|status of (my|the) order",
        r"tracking",
        r"(hasn't|has not|haven't|have not|not yet|never|nothing) "
        r"(arrived|shipped|been shipped|been dispatched|been delivered)",
        r"when will (it|my order|the order|my parcel) (ship|arrive|be)",
        r"dispatch",
        r"(delivery|arrival) (date|estimate)|estimated delivery",
        r"has (actually )?shipped",
        r"wo bleibt",
        r"bestellstatus|lieferstatus",
        r"sendungsverfolgung",
        r"nicht angekommen|noch nicht (erhalten|geliefert|angekommen)",
        r"wann (die|meine|unsere) (lieferung|bestellung|sendung) kommt",
        r"ou en est",
        r"suivi",
        r"livraison",
        r"(toujours )?rien recu",
        r"donde esta mi pedido",
        r"estado de mi pedido",
        r"seguimiento",
        r"no ha llegado",
        r"sin noticias",
    ),
    Intent.SALES_INQUIRY: (
        r"quote\b",
        r"quotation",
        r"pricing",
        r"wholesale",
        r"(volume|bulk|club|group|quantity|team) discount",
        r"bulk order",
        r"b2b",
        r"budget",
        r"reseller",
        r"angebot",
        r"mengenrabatt",
        r"grossbestellung",
        r"devis",
        r"en gros",
        r"presupuesto",
        r"cotizacion",
        r"al por mayor",
    ),
    Intent.SUPPORT_QUESTION: (
        r"how (do|can|should) i",
        r"what is the best way",
        r"can i (use|put|wash|clean|repair)",
        r"do you recommend",
        r"sizing",
        r"true to size",
        r"size (up|down|chart)",
        r"(which|what) size",
        r"manual",
        r"instructions for",
        r"compatible with",
        r"welche grosse",
        r"wie (kann|reinige|wasche|pflege) ich",
        r"quelle taille",
        r"comment (puis-je|faire|laver|nettoyer)",
        r"que talla",
        r"como (puedo|lavo|limpio)",
    ),
}

# Tie-break order among the scored intents: the more specific, actionable request wins.
INTENT_PRIORITY: tuple[Intent, ...] = (
    Intent.INVOICE,
    Intent.CANCELLATION,
    Intent.REFUND_REQUEST,
    Intent.COMPLAINT,
    Intent.ORDER_STATUS,
    Intent.SALES_INQUIRY,
    Intent.SUPPORT_QUESTION,
    Intent.NEWSLETTER,
    Intent.SPAM,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Stopwords (folded) used to guess the language; chosen to overlap as little as possible.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and is are my i you your to of it for have has not with this that please was but on in "
        "be would could we our thanks hi hello"
    ),
    "de": _words(
        "der die das und ich nicht ist mit mein meine meiner bitte ein eine einen den dem zu auf fur "
        "sie wir haben habe noch von bei uns unsere wurde hallo danke grusse ihnen"
    ),
    "fr": _words(
        "le les et je est pas mon ma mes une des pour vous avec ce sur au du bonjour merci nous ai il "
        "qui elles ils votre cordialement"
    ),
    "es": _words(
        "el los las y es mi mis por para con una del hola gracias pedido lo esta os todavia pero "
        "quiero hice saludos"
    ),
}

# Phrases that introduce quoted history in a reply ("On <date>, <name> wrote:").
REPLY_OPENERS = r"On|Am|Le|El"
REPLY_VERBS = r"wrote|schrieb|a écrit|escribió"
FORWARD_MARKERS = (
    r"-{2,} ?(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine|"
    r"Mensaje original) ?-{2,}"
)

CURRENCY_CODES: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "chf": "CHF",
}
# Longest first so "US$" wins over "$".
CURRENCY_PREFIX = r"US\$|€|\$|£|EUR|USD|GBP|CHF"
CURRENCY_SUFFIX = r"€|\$|£|EUR|USD|GBP|CHF|euros?|dollars?"

INTENT_LABELS: dict[Intent, str] = {
    Intent.ORDER_STATUS: "Order status question",
    Intent.REFUND_REQUEST: "Refund request",
    Intent.CANCELLATION: "Cancellation request",
    Intent.COMPLAINT: "Complaint",
    Intent.SALES_INQUIRY: "Sales inquiry",
    Intent.SUPPORT_QUESTION: "Support question",
    Intent.INVOICE: "Vendor invoice",
    Intent.NEWSLETTER: "Newsletter",
    Intent.SPAM: "Likely spam or phishing",
    Intent.OTHER: "Message without a recognised request",
}
