"""The line's own words, in every language it speaks.

Flow files hold the content; these are the sentences the engine adds around it (menus, errors,
transfers), so no flow can forget them. Every language here has every phrase (a test checks).

Written to be heard once, by a frightened or older caller on a bad line: short sentences, the
key last ("To go back, press pound."), numbers said twice. Spanish is US Spanish, usted.
"""

from __future__ import annotations

from typing import Final

PHRASES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "language_offer": "For English, press {key}.",
        "press": "To {label}, press {key}.",
        "announce_keys": (
            "At any time, press star to repeat, pound to go back, or 0 to talk with a person."
        ),
        "not_an_option": "Sorry, {key} is not an option.",
        "not_understood": "Sorry, I didn't understand that.",
        "no_input": "Sorry, I didn't hear anything.",
        # Crisis and emergency: said first, before the menu again; each number said twice.
        "crisis_self_harm": (
            "If you are thinking about suicide or hurting yourself, please call or text 9 8 8, "
            "the Suicide and Crisis Lifeline, at any time; it answers in Spanish too. Again, "
            "that's 9 8 8. If you are in danger right now, hang up and dial 9 1 1. To talk with "
            "someone here, press 0."
        ),
        "crisis_emergency": (
            "If this is an emergency, hang up and dial 9 1 1 now. Again, that's 9 1 1. If you "
            "are thinking about suicide or hurting yourself, call or text 9 8 8, the Suicide "
            "and Crisis Lifeline, in English or Spanish. To talk with someone here, press 0."
        ),
        "polite": "You're welcome.",
        "about_line": (
            "This is {program}. It tells you how to get a second opinion about cancer care, and "
            "how to reach a person who can help."
        ),
        "sms_about_line": "This is {program}, a text line about getting a second opinion.",
        "hours_are": "Hours: {hours}.",
        "too_many_misses": "Let me connect you with someone who can help.",
        "number_is": "The number is {digits}.",
        "number_nth": "The {nth} number is {digits}.",
        "number_again": "Again, that's {digits}.",
        "ordinals": "first second third fourth fifth",
        "connecting": "Connecting you to {name}.",
        "lines_busy": "The line is busy.",
        "no_answer": "No one answered.",
        "dial_failed": "The call could not be connected.",
        "trying_other_line": "Trying the other line.",
        "retry": "try again",
        "call_back": "ask for a call back",
        "text_number": "get the number by text",
        "text_numbers": "get the numbers by text",
        "operator": "talk with a person",
        "back": "go back",
        # Words a caller may say for these choices, besides their labels (the labels count too).
        "retry_words": "again, retry, try, redial",
        "call_back_words": "call back, call me back, callback, call me, phone me",
        "text_words": "text, text me, text message, send it",
        "message_words": "message, leave a message, voicemail, voice mail, record",
        "other_language_answers": "hello, help, I need help, English, I want to talk to someone",
        "texting": "We will send you a text message in a moment.",
        "cannot_text_now": "Sorry, we can't send a text message right now.",
        "cannot_text": "Sorry, we can't send a text message to this phone.",
        "call_back_asked": (
            "Thank you. A staff member will call you back at the number you are calling from, "
            "as soon as they can."
        ),
        "call_yourself": "You can also call {name} yourself.",
        "call_back_when_open": "ask for a call back once they open",
        "call_back_when_open_asked": (
            "Thank you. A staff member will call you back at the number you are calling from, "
            "{when}"
        ),
        "leave_message": "leave a message",
        "call_instead": "call {name} instead",
        # Said to whoever answers a transfer of a contact that screens its calls.
        "screen_whisper": "Call from {program}{language}. Press 1 to take it.",
        "screen_in_language": ", a caller who speaks {language}",
        "leave_message_how": (
            "After the tone, please say your name, the best number to reach you, and your "
            "message. Press pound when you are done."
        ),
        "message_received": (
            "Thank you. We got your message. A staff member will call you back {when}"
        ),
        "soon": "as soon as they can",
        "no_message": "Sorry, we did not get a message.",
        "closed": "{name} is closed right now.",
        "opens_again": "They are open again {when}",
        "call_them_at": "You can call {name}.",
        "goodbye": "Thank you for calling. Take care. Goodbye.",
        "star": "star",
        "pound": "pound",
        "program": "VCU Massey's Second Opinion Line",
        "call_back_intro": (
            "Hello. This is {program}, calling because you asked by text to talk with {name}. "
            "Please stay on the line while we connect you."
        ),
        # SMS
        "sms_footer": "Reply # to go back, 0 for a person.",
        "sms_footer_start": "Reply with a number, 0 for a person.",
        "sms_call_back": "Reply CALL and we will call you and connect you.",
        "sms_not_understood": "Sorry, we didn't understand that. In an emergency, call 911.",
        "sms_footer_anywhere": "Reply MENU for the menu, 0 for a person.",
        "sms_polite": "You're welcome. Take care!",
        "sms_wrong_number": "Texted us by mistake? Reply STOP.",
        "sms_crisis_self_harm": (
            "If you are thinking about suicide or hurting yourself, call or text 988, the "
            "Suicide & Crisis Lifeline (24/7, in Spanish too).\nIn an emergency, call 911."
        ),
        "sms_crisis_emergency": (
            "If this is an emergency, call 911 now.\nThinking about suicide or hurting "
            "yourself? Call or text 988, the Suicide & Crisis Lifeline (24/7, in Spanish too)."
        ),
        "sms_crisis_person": "To talk with a person here, call {coordinator} or reply 0.",
        "sms_crisis_person_opted_out": "To talk with a person here, call {coordinator}.",
        "sms_card": "{name}: {display}",
        "sms_card_or": " or ",
        "sms_opt_in": (
            "Msg frequency varies. Msg&data rates may apply. Reply STOP to opt out, HELP for help."
        ),
        # SMS keywords (carrier rules) and the fixed replies of the text line
        "sms_help": (
            "{program}: help getting a second opinion. Questions? Call the patient referral "
            "coordinator at {coordinator}. Msg frequency varies. Msg&data rates may apply. "
            "Reply STOP to opt out, MENU for the menu."
        ),
        "sms_stopped": (
            "You are unsubscribed from {program}. No more messages will be sent. "
            "Reply START to resubscribe. For help call {coordinator}."
        ),
        "sms_started": (
            "You are subscribed to {program} again. Msg frequency varies. Msg&data rates may "
            "apply. Reply MENU for the menu, HELP for help, STOP to opt out."
        ),
        "sms_unavailable": (
            "{program}: the text menu is not available right now. Please call the patient "
            "referral coordinator at {coordinator}. In an emergency, call 911. "
            "Reply STOP to opt out."
        ),
        "sms_calling": "We will call you in a moment and connect you to {name}.",
        "sms_calling_later": (
            "{name} is closed now. We will call you {when} and connect you to them."
        ),
        "sms_call_refused": "We can't call this number back. Please call us:",
        # Voice: the text a caller asked for, and the fallback when the menu cannot run
        "voice_text_intro": "{title}: the numbers you asked for. Reply STOP to opt out.",
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
            "En cualquier momento, oprima asterisco para repetir, numeral para regresar, "
            "o 0 para hablar con una persona."
        ),
        "not_an_option": "Lo siento, {key} no es una opción.",
        "not_understood": "Lo siento, no le entendí.",
        "no_input": "Lo siento, no escuché nada.",
        "crisis_self_harm": (
            "Si está pensando en el suicidio o en hacerse daño, llame o envíe un mensaje de "
            "texto al 9 8 8, la Línea de Prevención del Suicidio y Crisis, a cualquier hora; "
            "para español, oprima 2. Repito: 9 8 8. Si está en peligro ahora mismo, cuelgue y "
            "marque el 9 1 1. Para hablar con alguien aquí, oprima 0."
        ),
        "crisis_emergency": (
            "Si es una emergencia, cuelgue y marque el 9 1 1 ahora. Repito: 9 1 1. Si está "
            "pensando en el suicidio o en hacerse daño, llame al 9 8 8, la Línea de Prevención "
            "del Suicidio y Crisis, y oprima 2 para español. Para hablar con alguien aquí, "
            "oprima 0."
        ),
        "polite": "De nada.",
        "about_line": (
            "Esta es la {program}. Le explica cómo pedir una segunda opinión sobre la atención "
            "del cáncer, y cómo hablar con una persona que le puede ayudar."
        ),
        "sms_about_line": "Esta es la {program}.",
        "hours_are": "Horario: {hours}.",
        "too_many_misses": "Le voy a comunicar con una persona que le puede ayudar.",
        "number_is": "El número es {digits}.",
        "number_nth": "El {nth} número es {digits}.",
        "number_again": "Repito: {digits}.",
        "ordinals": "primer segundo tercer cuarto quinto",
        "connecting": "Le estoy comunicando con {name}.",
        "lines_busy": "La línea está ocupada.",
        "no_answer": "Nadie contestó.",
        "dial_failed": "No se pudo completar la llamada.",
        "trying_other_line": "Vamos a intentar con la otra línea.",
        "retry": "intentar de nuevo",
        "call_back": "pedir que le devuelvan la llamada",
        "text_number": "recibir el número por mensaje de texto",
        "text_numbers": "recibir los números por mensaje de texto",
        "operator": "hablar con una persona",
        "back": "regresar",
        "retry_words": "otra vez, de nuevo, intentar, volver a llamar",
        "call_back_words": (
            "que me llamen, llámenme, devuelvan la llamada, devuélvanme la llamada, "
            "que me devuelvan la llamada"
        ),
        "text_words": "texto, mensaje de texto, mándenmelo, por texto",
        "message_words": "mensaje, dejar un mensaje, recado, dejar recado, buzón, buzón de voz",
        "other_language_answers": (
            "hola, ayuda, necesito ayuda, quiero hablar con alguien, español, hablo español, "
            "buenos días"
        ),
        "texting": "En un momento le enviaremos un mensaje de texto.",
        "cannot_text_now": "Lo siento, ahora mismo no podemos enviar mensajes de texto.",
        "cannot_text": "Lo siento, no podemos enviar mensajes de texto a este teléfono.",
        "call_back_asked": (
            "Gracias. Un miembro del personal le devolverá la llamada al número desde el que "
            "llama, lo antes posible."
        ),
        "call_yourself": "También puede llamar directamente a {name}.",
        "call_back_when_open": "pedir que le devuelvan la llamada cuando abran",
        "call_back_when_open_asked": (
            "Gracias. Un miembro del personal le devolverá la llamada al número desde el que "
            "llama, {when}"
        ),
        "leave_message": "dejar un mensaje",
        "call_instead": "llamar en su lugar a {name}",
        "screen_whisper": "Llamada de {program}{language}. Oprima 1 para tomarla.",
        "screen_in_language": ", de una persona que habla {language}",
        "leave_message_how": (
            "Después del tono, diga su nombre, el mejor número para llamarle y su mensaje. "
            "Oprima numeral cuando termine."
        ),
        "message_received": (
            "Gracias. Recibimos su mensaje. Un miembro del personal le devolverá la llamada {when}"
        ),
        "soon": "lo antes posible",
        "no_message": "Lo siento, no recibimos ningún mensaje.",
        "closed": "{name} está cerrado en este momento.",
        "opens_again": "Vuelve a abrir {when}",
        "call_them_at": "Puede llamar a {name}.",
        "goodbye": "Gracias por llamar. Cuídese mucho. Adiós.",
        "star": "asterisco",
        "pound": "numeral",
        "program": "la Línea de Segunda Opinión de VCU Massey",
        "call_back_intro": (
            "Hola. Le llama {program}, porque usted pidió por mensaje de texto hablar con "
            "{name}. Por favor, no cuelgue mientras le comunicamos."
        ),
        "sms_footer": "Responda # para regresar, 0 para una persona.",
        "sms_footer_start": "Responda un número, o 0 para una persona.",
        "sms_call_back": "Responda LLAMAME y le llamaremos para comunicarle.",
        "sms_not_understood": "Lo siento, no entendimos su mensaje. Emergencias: llame al 911.",
        "sms_footer_anywhere": "Responda MENU para el menú, 0 para una persona.",
        "sms_polite": "De nada. ¡Cuídese!",
        "sms_wrong_number": "¿Nos escribió por error? Responda STOP.",
        "sms_crisis_self_harm": (
            "¿Piensa en el suicidio o en hacerse daño? Llame o escriba al 988, Línea de "
            "Prevención del Suicidio y Crisis, 24/7 (en español: oprima 2 o escriba AYUDA)."
            "\nEmergencias: llame al 911."
        ),
        "sms_crisis_emergency": (
            "Si es una emergencia, llame al 911 ahora.\n¿Piensa en el suicidio o en hacerse "
            "daño? Llame o envíe un texto al 988 (24/7; en español: oprima 2 o escriba AYUDA)."
        ),
        "sms_crisis_person": (
            "Para hablar con una persona aquí, llame al {coordinator} o responda 0."
        ),
        "sms_crisis_person_opted_out": (
            "Para hablar con una persona aquí, llame al {coordinator}."
        ),
        "sms_card": "{name}: {display}",
        "sms_card_or": " o ",
        "sms_opt_in": (
            "Frecuencia de mensajes variable. Pueden aplicarse tarifas de mensajes y datos. "
            "Responda STOP para cancelar, AYUDA para ayuda."
        ),
        "sms_help": (
            "{program}. Ayuda: coordinación de referidos, {coordinator}. Frecuencia de "
            "mensajes variable. Pueden aplicarse tarifas de mensajes y datos. Responda STOP "
            "para cancelar."
        ),
        "sms_stopped": (
            "Canceló su suscripción a la {program}. No le enviaremos más mensajes. "
            "Responda START para volver. Para ayuda llame al {coordinator}."
        ),
        "sms_started": (
            "Volvió a suscribirse a la {program}. Frecuencia de mensajes variable. Pueden "
            "aplicarse tarifas de mensajes y datos. Responda STOP para cancelar."
        ),
        "sms_unavailable": (
            "{program}: el menú por mensaje de texto no está disponible ahora. Llame al "
            "{coordinator}. Emergencias: llame al 911. Responda STOP para cancelar."
        ),
        "sms_calling": "En un momento le llamaremos para comunicarle con {name}.",
        "sms_calling_later": ("{name} está cerrado ahora. Le llamaremos {when} para comunicarle."),
        "sms_call_refused": "No podemos devolver la llamada a este número. Llámenos, por favor:",
        "voice_text_intro": "{title}: los números que pidió. Responda STOP para cancelar.",
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

PERSON_KEY: Final = "0"

SPOKEN_WORDS: Final[dict[str, dict[str, str]]] = {
    # Words a caller may say (or text) instead of pressing a reserved key or a digit. Words
    # for a person count in any sentence; the others only in a short one ("repeat that",
    # "number two"), so "my cancer came back" is not "go back".
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
        "repite": "*",
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

SHORT_TEXT_WORDS: Final = 3
"""A digit, a number word or a command word ("repeat", "back") chooses only in a text or an
utterance of at most this many meaningful words: in a longer one it is part of a story ("I was
told 3 weeks ago"), not a choice."""

LONG_TEXT_WORDS: Final = 6
"""Past this many meaningful words, one matching word is not enough to choose an option."""

FILLER_WORDS: Final = frozenset(
    # Words that say nothing about which option a caller means: they never count towards a
    # match, on either side (the caller's words, an option's label).
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
        "its",
        "this",
        "that",
        "what",
        "how",
        "if",
        "with",
        "by",
        "or",
        "please",
        "want",
        "would",
        "like",
        "um",
        "uh",
        "er",
        "hmm",
        "oh",
        "okay",
        "ok",
        "yes",
        "yeah",
        "so",
        "well",
        "just",
        "can",
        "could",
        "do",
        "does",
        "did",
        "need",
        "know",
        "tell",
        "get",
        "have",
        "has",
        "had",
        "was",
        "were",
        "am",
        "m",
        "s",
        "t",
        "ll",
        "re",
        "ve",
        "d",
        "don",
        "about",
        "some",
        "any",
        "there",
        "here",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "also",
        "really",
        "very",
        "much",
        "want",
        "wanted",
        "go",
        "going",
        "will",
        "hear",
        "learn",
        "find",
        "give",
        "look",
        "looking",
        "help",
        "question",
        "questions",
        "second",
        "opinion",
        "opinions",
        "cancer",
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
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
        "mis",
        "me",
        "que",
        "qué",
        "como",
        "cómo",
        "si",
        "sí",
        "se",
        "lo",
        "le",
        "les",
        "al",
        "favor",
        "quiero",
        "quisiera",
        "necesito",
        "puedo",
        "puede",
        "pueden",
        "es",
        "son",
        "está",
        "estoy",
        "tengo",
        "tiene",
        "hay",
        "este",
        "esta",
        "eso",
        "esto",
        "pues",
        "bueno",
        "hola",
        "gracias",
        "no",
        "yo",
        "usted",
        "ya",
        "muy",
        "algo",
        "sobre",
        "hacer",
        "saber",
        "oír",
        "escuchar",
        "ver",
        "recibir",
        "buscar",
        "segunda",
        "opinión",
        "cáncer",
        "ayuda",
        "pregunta",
        "preguntas",
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
