"""The line's own words, in every language it speaks.

Flow files hold the content; these are the sentences the engine adds around it (menus, errors,
transfers), so no flow can forget them. Every language here has every phrase (a test checks).
"""

from __future__ import annotations

from typing import Final

PHRASES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "language_offer": "For English, press {key}.",
        "press": "To {label}, press {key}.",
        "announce_keys": (
            "At any time, press 0 to talk with a person, star to repeat, or pound to go back."
        ),
        "not_an_option": "Sorry, {key} is not an option.",
        "not_understood": "Sorry, I didn't understand that.",
        "no_input": "Sorry, I didn't hear anything.",
        "too_many_misses": "Let me connect you with someone who can help.",
        "number_is": "The number is {digits}.",
        "numbers_are": "The numbers are {digits}.",
        "connecting": "Connecting you to {name}.",
        "lines_busy": "The line is busy.",
        "no_answer": "No one answered.",
        "dial_failed": "The call could not be connected.",
        "trying_other_line": "Trying the other line.",
        "retry": "try again",
        "other_line": "try the other line",
        "text_number": "get the number by text",
        "operator": "talk with a person",
        "back_to_menu": "go back to the menu you were in",
        "texting": "We will text you these numbers in a moment.",
        "texting_later": "We will text you these numbers as soon as we can.",
        "cannot_text": "Sorry, we can't send a text message to this phone.",
        "closed": "{name} is closed right now. Hours: {hours}.",
        "call_them_at": "You can call {name} at {digits}.",
        "goodbye": "Thank you for calling. Take care. Goodbye.",
        "star": "star",
        "pound": "pound",
        # SMS
        "sms_footer": "Reply # to go back, 0 for a person.",
        "sms_footer_start": "Reply with a number, or 0 for a person.",
        "sms_call_back": "Reply CALL and we will call you and connect you.",
        "sms_not_understood": "Sorry, we didn't understand that.",
        "sms_card": "{name}: {display}",
        "sms_card_or": " or ",
        "sms_opt_in": "Msg&data rates may apply. Reply STOP to opt out, HELP for help.",
        # SMS keywords (carrier rules) and the fixed replies of the text line
        "sms_help": (
            "{program}: how to get a second opinion. Patient referral coordinator: "
            "{coordinator}. Msg&data rates may apply. Reply STOP to opt out, MENU for the menu."
        ),
        "sms_stopped": (
            "You are unsubscribed from {program}. No more messages will be sent. "
            "Reply START to resubscribe. For help call {coordinator}."
        ),
        "sms_started": (
            "You are subscribed to {program} again. Msg&data rates may apply. "
            "Reply MENU for the menu, HELP for help, STOP to opt out."
        ),
        "sms_unavailable": (
            "{program}: the text menu is not available right now. Please call the patient "
            "referral coordinator at {coordinator}. Reply STOP to opt out."
        ),
        "sms_calling": "We will call you in a moment and connect you to {name}.",
        # Voice: the text a caller asked for, and the fallback when the menu cannot run
        "voice_text_intro": "{title}: the numbers you asked for on your call.",
        "fallback_sorry": (
            "We're sorry, our phone menu is not working right now. "
            "Let me connect you with the patient referral coordinator."
        ),
        "fallback_after": (
            "If no one answered, please call the patient referral coordinator at {digits}. Goodbye."
        ),
    },
    "es": {
        "language_name": "Español",
        "language_offer": "Para español, oprima {key}.",
        "press": "Para {label}, oprima {key}.",
        "announce_keys": (
            "En cualquier momento, oprima 0 para hablar con una persona, "
            "asterisco para repetir, o numeral para regresar."
        ),
        "not_an_option": "Lo siento, {key} no es una opción.",
        "not_understood": "Lo siento, no le entendí.",
        "no_input": "Lo siento, no escuché nada.",
        "too_many_misses": "Le voy a comunicar con una persona que le puede ayudar.",
        "number_is": "El número es {digits}.",
        "numbers_are": "Los números son {digits}.",
        "connecting": "Le estoy comunicando con {name}.",
        "lines_busy": "La línea está ocupada.",
        "no_answer": "Nadie contestó.",
        "dial_failed": "No se pudo completar la llamada.",
        "trying_other_line": "Vamos a intentar con la otra línea.",
        "retry": "intentar de nuevo",
        "other_line": "intentar con la otra línea",
        "text_number": "recibir el número por mensaje de texto",
        "operator": "hablar con una persona",
        "back_to_menu": "volver al menú anterior",
        "texting": "En un momento le enviaremos estos números por mensaje de texto.",
        "texting_later": "Le enviaremos estos números por mensaje de texto en cuanto podamos.",
        "cannot_text": "Lo siento, no podemos enviar mensajes de texto a este teléfono.",
        "closed": "{name} está cerrado en este momento. Horario: {hours}.",
        "call_them_at": "Puede llamar a {name} al {digits}.",
        "goodbye": "Gracias por llamar. Cuídese mucho. Adiós.",
        "star": "asterisco",
        "pound": "numeral",
        "sms_footer": "Responda # para volver, 0 para una persona.",
        "sms_footer_start": "Responda un número, o 0 para una persona.",
        "sms_call_back": "Responda CALL y le llamaremos para comunicarle.",
        "sms_not_understood": "Lo siento, no entendimos su mensaje.",
        "sms_card": "{name}: {display}",
        "sms_card_or": " o ",
        "sms_opt_in": (
            "Pueden aplicarse tarifas de mensajes y datos. Responda STOP para cancelar, "
            "AYUDA para ayuda."
        ),
        "sms_help": (
            "{program}: cómo pedir una segunda opinión. Coordinación de referidos: "
            "{coordinator}. Pueden aplicarse tarifas de mensajes y datos. Responda STOP para "
            "cancelar, MENU para el menú."
        ),
        "sms_stopped": (
            "Canceló su suscripción a {program}. No le enviaremos más mensajes. "
            "Responda START para volver. Para ayuda llame al {coordinator}."
        ),
        "sms_started": (
            "Está suscrito otra vez a {program}. Pueden aplicarse tarifas de mensajes y datos. "
            "Responda MENU para el menú, AYUDA para ayuda, STOP para cancelar."
        ),
        "sms_unavailable": (
            "{program}: el menú por texto no está disponible ahora. Llame a la coordinación de "
            "referidos al {coordinator}. Responda STOP para cancelar."
        ),
        "sms_calling": "En un momento le llamaremos para comunicarle con {name}.",
        "voice_text_intro": "{title}: los números que pidió en su llamada.",
        "fallback_sorry": (
            "Lo sentimos, nuestro menú telefónico no funciona en este momento. "
            "Le voy a comunicar con la coordinación de referidos de pacientes."
        ),
        "fallback_after": (
            "Si nadie contestó, llame a la coordinación de referidos de pacientes al {digits}. "
            "Adiós."
        ),
    },
}

SUPPORTED_LANGUAGES: Final = tuple(PHRASES)

SPOKEN_WORDS: Final[dict[str, dict[str, str]]] = {
    # Words a caller may say (or text) instead of pressing a reserved key.
    "en": {
        "operator": "0",
        "person": "0",
        "coordinator": "0",
        "representative": "0",
        "agent": "0",
        "human": "0",
        "somebody": "0",
        "someone": "0",
        "repeat": "*",
        "again": "*",
        "back": "#",
        "previous": "#",
        "spanish": "9",
        "español": "9",
        "espanol": "9",
        "one": "1",
        "two": "2",
        "three": "3",
        "four": "4",
        "five": "5",
        "six": "6",
        "seven": "7",
        "eight": "8",
        "nine": "9",
        "zero": "0",
    },
    "es": {
        "operador": "0",
        "operadora": "0",
        "persona": "0",
        "coordinador": "0",
        "coordinadora": "0",
        "alguien": "0",
        "representante": "0",
        "agente": "0",
        "repetir": "*",
        "repita": "*",
        "otra": "*",
        "regresar": "#",
        "atrás": "#",
        "atras": "#",
        "volver": "#",
        "inglés": "9",
        "ingles": "9",
        "english": "9",
        "uno": "1",
        "dos": "2",
        "tres": "3",
        "cuatro": "4",
        "cinco": "5",
        "seis": "6",
        "siete": "7",
        "ocho": "8",
        "nueve": "9",
        "cero": "0",
    },
}

STOPWORDS: Final = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "to",
        "for",
        "of",
        "in",
        "on",
        "at",
        "your",
        "you",
        "my",
        "me",
        "i",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "what",
        "how",
        "if",
        "with",
        "by",
        "or",
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "y",
        "o",
        "de",
        "del",
        "para",
        "por",
        "en",
        "con",
        "su",
        "sus",
        "mi",
        "me",
        "que",
        "qué",
        "como",
        "cómo",
        "si",
        "se",
        "lo",
        "le",
        "al",
        "please",
        "por",
        "favor",
        "quiero",
        "want",
        "would",
        "like",
    ]
)


CARRIER_KEYWORDS: Final[dict[str, frozenset[str]]] = {
    # Whole-message words carriers give a meaning on short codes; the SMS line answers them
    # itself, and no flow option may claim one.
    "opt-out": frozenset(
        {
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "PARAR",
            "ALTO",
        }
    ),
    "opt-in": frozenset({"START", "YES", "UNSTOP"}),
    "help": frozenset({"HELP", "INFO", "AYUDA"}),
}


def phrase(lang: str, name: str, /, **values: str) -> str:
    template = PHRASES.get(lang, PHRASES["en"])[name]
    return template.format(**values) if values else template
