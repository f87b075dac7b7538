"""The showcase's two languages: one small dict of strings per language.

The language of a page comes from the ``lang`` cookie (set by the switch in the
header) when there is one, else from the browser's ``Accept-Language``
(``connection.langs``, best first), else English.
"""

from __future__ import annotations

from typing import Final

from simples import HTTPConnection

DEFAULT: Final = "en"

STRINGS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "tagline": "A shared notes board, live.",
        "board": "Board",
        "api": "JSON API",
        "signed_in_as": "Signed in as",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "sign_in_title": "Sign in to post",
        "sign_in_intro": "Pick a name to sign your notes with. No password: this is a demo.",
        "name": "Your name",
        "name_invalid": "A name is 1 to 40 characters, letters, digits, spaces and .-_'",
        "anonymous_hint": "Everyone can read the board; sign in with any name to post.",
        "new_note": "New note",
        "note_text": "Your note",
        "note_placeholder": "What's new?",
        "attachment": "Attachment (optional)",
        "attachment_hint": "Any file up to {max}. Images, audio and video play in the page.",
        "post": "Post note",
        "text_invalid": "A note needs some text (at most 2000 characters).",
        "posted": "Your note is on the board.",
        "welcome_back": "Welcome, {name}!",
        "signed_out": "You are signed out. See you soon!",
        "notes": "Notes",
        "count": "{count} notes",
        "count_one": "1 note",
        "empty": "No notes yet. Be the first!",
        "download": "Download",
        "newer": "Newer",
        "older": "Older",
        "page_of": "Page {page} of {pages}",
        "live_connecting": "Connecting…",
        "live_open": "Live",
        "live_closed": "Offline, retrying…",
        "online": "{count} online",
        "new_notes_banner": "New notes arrived.",
        "see_them": "See them",
        "error_title": "Error {code}",
        "error_404": "There is nothing at this address.",
        "error_413": "That is too big. Attachments may be up to {max}.",
        "error_403": "This form has expired. Please go back, reload and try again.",
        "error_400": "The request could not be understood.",
        "error_500": "Something went wrong on our side. It has been logged.",
        "error_503": "A service we depend on is unavailable. Please try again shortly.",
        "error_other": "The request could not be completed.",
        "back_home": "Back to the board",
        "footer": "Built with simples: one object, the connection, is both request and response.",
    },
    "fr": {
        "language_name": "Français",
        "tagline": "Un tableau de notes partagé, en direct.",
        "board": "Tableau",
        "api": "API JSON",
        "signed_in_as": "Connecté·e en tant que",
        "sign_in": "Se connecter",
        "sign_out": "Se déconnecter",
        "sign_in_title": "Connectez-vous pour publier",
        "sign_in_intro": "Choisissez un nom pour signer vos notes. Pas de mot de passe : "
        "c'est une démo.",
        "name": "Votre nom",
        "name_invalid": "Un nom fait de 1 à 40 caractères : lettres, chiffres, espaces et .-_'",
        "anonymous_hint": "Tout le monde peut lire le tableau ; connectez-vous avec un nom "
        "pour publier.",
        "new_note": "Nouvelle note",
        "note_text": "Votre note",
        "note_placeholder": "Quoi de neuf ?",
        "attachment": "Pièce jointe (facultative)",
        "attachment_hint": "Tout fichier jusqu'à {max}. Images, sons et vidéos se lisent "
        "dans la page.",
        "post": "Publier",
        "text_invalid": "Une note a besoin d'un texte (2000 caractères au plus).",
        "posted": "Votre note est sur le tableau.",
        "welcome_back": "Bienvenue, {name} !",
        "signed_out": "Vous êtes déconnecté·e. À bientôt !",
        "notes": "Notes",
        "count": "{count} notes",
        "count_one": "1 note",
        "empty": "Pas encore de notes. Soyez la première personne !",
        "download": "Télécharger",
        "newer": "Plus récentes",
        "older": "Plus anciennes",
        "page_of": "Page {page} sur {pages}",
        "live_connecting": "Connexion…",
        "live_open": "En direct",
        "live_closed": "Hors ligne, nouvel essai…",
        "online": "{count} en ligne",
        "new_notes_banner": "De nouvelles notes sont arrivées.",
        "see_them": "Les voir",
        "error_title": "Erreur {code}",
        "error_404": "Il n'y a rien à cette adresse.",
        "error_413": "C'est trop gros. Les pièces jointes vont jusqu'à {max}.",
        "error_403": "Ce formulaire a expiré. Revenez en arrière, rechargez et réessayez.",
        "error_400": "La requête est incompréhensible.",
        "error_500": "Une erreur s'est produite de notre côté. Elle a été consignée.",
        "error_503": "Un service dont nous dépendons est indisponible. Réessayez bientôt.",
        "error_other": "La requête n'a pas pu aboutir.",
        "back_home": "Retour au tableau",
        "footer": "Fait avec simples : un seul objet, la connexion, est requête et réponse.",
    },
}

LANGUAGES: Final = tuple(STRINGS)


def pick_language(connection: HTTPConnection) -> str:
    """The ``lang`` cookie if it names a language we have, else the browser's choice."""
    chosen = connection.cookies.get("lang")
    if chosen in STRINGS:
        return chosen
    for tag in connection.langs:  # best first, q=0 already dropped
        primary = tag.split("-", 1)[0].lower()
        if primary in STRINGS:
            return primary
    return DEFAULT


def human_size(size: int, lang: str) -> str:
    """``1536`` → ``1.5 KB`` (``1,5 Ko`` in French)."""
    units = ("B", "KB", "MB", "GB") if lang != "fr" else ("o", "Ko", "Mo", "Go")
    value = float(size)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            text = f"{value:.0f}" if unit == units[0] else f"{value:.1f}".removesuffix(".0")
            if lang == "fr":
                text = text.replace(".", ",")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
