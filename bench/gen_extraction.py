"""Write a realistic "Extraction Correspondance MSSanté" file, deterministically.

    python -m bench.gen_extraction -n 535000 -o extraction.csv [--seed 1]

What "realistic" means here, column by column as the national file fills them:

- about 85 % PER lines (médecins, infirmiers, pharmaciens, kinés, dentistes, sages-femmes,
  podologues, orthophonistes, in roughly national proportions) and 15 % ORG lines;
- PER lines carry the practitioner (RPPS or ADELI, ``idNatPS``), a civility for doctors,
  upper-case family names with accents, particles, apostrophes and hyphens (``LE GALL``,
  ``N'DIAYE``, ``MARTIN-DUPONT``, ``LEFÈVRE``), given names with accents and hyphens
  (``Marie-Hélène``), profession and specialty codes with their labels; ORG lines leave
  those columns empty;
- the structure (FINESS for establishments, SIRET for practices) with its AFNOR address
  lines: L2/L3/L5 mostly empty, a street number and a street type code, L6 routing line
  ``<postcode> <CITY>`` with a CEDEX now and then, Corsica (2A/2B) and overseas included;
- about 0.1 % of addresses repeat: the same mailbox of a practitioner working at a second
  structure, on a later line;
- ``Dématérialisation`` is ``True`` or ``False``.

The same ``-n`` and ``--seed`` always give the same bytes.
"""

from __future__ import annotations

import argparse
import random
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from directory.extraction import HEADER, format_row

__all__ = ["generate", "main"]

_FAMILY = (
    "MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL "
    "LEFEBVRE LEROY ROUX DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE "
    "ROUSSEAU VINCENT MULLER LEFÈVRE FAURE ANDRÉ MERCIER BLANC GUÉRIN BOYER GARNIER CHEVALIER "
    "FRANÇOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLÉMENT MORIN NICOLAS HENRY ROUSSEL MATHIEU "
    "GAUTIER MASSON MARCHAND DUVAL DENIS DUMONT MARIE LEMAIRE NOËL MEYER DUFOUR MEUNIER BRUN "
    "BLANCHARD GIRAUD JOLY RIVIÈRE LUCAS BRUNET GAILLARD BARBIER ARNAUD MARTINEZ GÉRARD ROCHE "
    "RENARD SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE AUBERT LEMOINE RENAUD "
    "DUMAS LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE BENOÎT REY LECLERC PAYET ROLLAND LECLERCQ "
    "GUILLAUME LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT BERGER CARPENTIER SANCHEZ DUPUIS MOULIN "
    "LOUIS DESCHAMPS HUET VASSEUR PEREZ BOUCHER FLEURY ROYER KLEIN JACQUET ADAM PARIS POIRIER "
    "MARTY AUBRY GUYOT CARRÉ CHARLES RENAULT CHARPENTIER MÉNARD MAILLARD BARON BERTIN BAILLY "
    "HERVÉ SCHNEIDER FERNANDEZ COLLET LÉGER BOUVIER JULIEN PRÉVOST MILLET PERROT DANIEL "
    "COUSIN GERMAIN BRETON BESSON LANGLOIS RÉMY PELLETIER LÉVÊQUE PERRIER LEBLANC BARRÉ "
    "LEBRUN MARCHAL WEBER MALLET HAMON BOULANGER JACOB MONNIER MICHAUD RODRIGUEZ GUICHARD "
    "GILLET ÉTIENNE GRONDIN POULAIN TESSIER CHEVALLIER COLLIN CHAUVIN BOUCHET GAY LEMAÎTRE "
    "BÉNARD MARÉCHAL HUMBERT REYNAUD ANTOINE HOARAU PERRET BARTHÉLEMY CORDIER PICHON LEJEUNE "
    "GILBERT LAMY DELAUNAY PASQUIER CARLIER LAPORTE NGUYEN TRAN DIALLO TRAORÉ"
).split()
_FAMILY_SPECIAL = (
    "LE GALL",
    "LE ROUX",
    "LE GOFF",
    "LE BIHAN",
    "DE LA FONTAINE",
    "DE OLIVEIRA",
    "DA SILVA",
    "DOS SANTOS",
    "N'DIAYE",
    "N'GUYEN",
    "D'ALMEIDA",
    "D'ANGELO",
    "BEN SALAH",
    "BEN AMOR",
    "EL FASSI",
    "VAN DEN BERG",
    "SAINT-JUST",
    "DE SAINT-EXUPÉRY",
    "L'HÔTE",
    "O'NEILL",
)
_GIVEN_M = (
    "Jean Pierre Michel Philippe Alain Nicolas François Christophe Patrick Éric Frédéric "
    "Laurent Stéphane Sébastien Olivier Thierry Julien David Jérôme Guillaume Thomas Antoine "
    "Maxime Benoît Cédric Mickaël Raphaël Loïc Joël Noël Hervé Grégoire Aurélien Valentin "
    "Hugo Lucas Théo Mathéo Léo Gaël Anaël Yannick Régis Rémi André René Hélios Jean-Pierre "
    "Jean-François Jean-Marc Jean-Luc Pierre-Yves Paul-Henri Marc-Antoine Karim Mehdi Yacine"
).split()
_GIVEN_F = (
    "Marie Nathalie Isabelle Sylvie Catherine Françoise Valérie Christine Sandrine Sophie "
    "Céline Stéphanie Hélène Aurélie Émilie Julie Camille Laura Léa Chloé Manon Inès Zoé "
    "Anaïs Maëlle Gaëlle Noémie Élodie Amélie Mélanie Cécile Bérénice Agnès Maïté Clémence "
    "Pauline Charlotte Lucie Océane Marie-Hélène Marie-Claire Anne-Sophie Marie-Pierre "
    "Anne-Laure Marie-Noëlle Fatima Leïla Yasmine Aïcha"
).split()

# (code, label, share, mailbox domain, civility, specialties [(code, label)], ADELI share)
_PROFESSIONS = (
    (
        "10",
        "Médecin",
        44,
        "medecin.mssante.fr",
        "DR",
        (
            ("SM54", "Médecine générale (SM)"),
            ("SM54", "Médecine générale (SM)"),
            ("SM54", "Médecine générale (SM)"),
            ("SM26", "Qualifié en Médecine Générale (SM)"),
            ("SM04", "Cardiologie et maladies vasculaires (SM)"),
            ("SM15", "Dermatologie et vénéréologie (SM)"),
            ("SM02", "Anesthésie-réanimation (SM)"),
            ("SM40", "Psychiatrie (SM)"),
            ("SM44", "Radio-diagnostic (SM)"),
            ("SM38", "Pédiatrie (SM)"),
            ("SM20", "Gynécologie-obstétrique (SM)"),
            ("SM35", "Ophtalmologie (SM)"),
            ("SM37", "Oto-rhino-laryngologie (SM)"),
            ("SM42", "Rhumatologie (SM)"),
            ("SM24", "Gastro-entérologie et hépatologie (SM)"),
            ("SM31", "Néphrologie (SM)"),
            ("SM39", "Pneumologie (SM)"),
            ("SM32", "Neurologie (SM)"),
            ("SM19", "Endocrinologie et métabolisme (SM)"),
            ("SM08", "Chirurgie orthopédique et traumatologie (SM)"),
            ("SM53", "Gériatrie (SM)"),
        ),
        5,
    ),
    ("60", "Infirmier", 22, "infirmier.mssante.fr", "", (("", ""),), 40),
    ("21", "Pharmacien", 10, "pharmacien.mssante.fr", "", (("", ""),), 0),
    (
        "70",
        "Masseur-Kinésithérapeute",
        9,
        "masseur-kinesitherapeute.mssante.fr",
        "",
        (("", ""),),
        20,
    ),
    (
        "40",
        "Chirurgien-Dentiste",
        7,
        "chirurgien-dentiste.mssante.fr",
        "DR",
        (("", ""), ("", ""), ("SCD01", "Orthopédie dento-faciale (SCD)")),
        0,
    ),
    ("50", "Sage-Femme", 4, "sage-femme.mssante.fr", "", (("", ""),), 0),
    ("80", "Pédicure-Podologue", 2, "pedicure-podologue.mssante.fr", "", (("", ""),), 30),
    ("91", "Orthophoniste", 2, "orthophoniste.mssante.fr", "", (("", ""),), 60),
)
_CATEGORIES = (("C", "Civil"), ("M", "Militaire"), ("E", "Etudiant"))
_CATEGORY_WEIGHTS = (97, 1, 2)

# (city as La Poste writes it, postcode, department, weight)
_CITIES = (
    ("PARIS", "750", "75", 90),
    ("MARSEILLE", "130", "13", 30),
    ("LYON", "6900", "69", 25),
    ("TOULOUSE", "31000", "31", 18),
    ("NICE", "06000", "06", 14),
    ("NANTES", "44000", "44", 12),
    ("STRASBOURG", "67000", "67", 12),
    ("MONTPELLIER", "34000", "34", 12),
    ("BORDEAUX", "33000", "33", 12),
    ("LILLE", "59000", "59", 12),
    ("RENNES", "35000", "35", 10),
    ("REIMS", "51100", "51", 7),
    ("SAINT-ETIENNE", "42000", "42", 7),
    ("LE HAVRE", "76600", "76", 6),
    ("TOULON", "83000", "83", 6),
    ("GRENOBLE", "38000", "38", 8),
    ("DIJON", "21000", "21", 6),
    ("ANGERS", "49000", "49", 6),
    ("NIMES", "30000", "30", 5),
    ("VILLEURBANNE", "69100", "69", 5),
    ("CLERMONT-FERRAND", "63000", "63", 6),
    ("LE MANS", "72000", "72", 5),
    ("AIX-EN-PROVENCE", "13100", "13", 5),
    ("BREST", "29200", "29", 5),
    ("TOURS", "37000", "37", 5),
    ("AMIENS", "80000", "80", 5),
    ("LIMOGES", "87000", "87", 5),
    ("ANNECY", "74000", "74", 4),
    ("PERPIGNAN", "66000", "66", 4),
    ("BOULOGNE-BILLANCOURT", "92100", "92", 4),
    ("METZ", "57000", "57", 4),
    ("BESANCON", "25000", "25", 4),
    ("ORLEANS", "45000", "45", 4),
    ("SAINT-DENIS", "93200", "93", 3),
    ("ARGENTEUIL", "95100", "95", 3),
    ("ROUEN", "76000", "76", 5),
    ("MULHOUSE", "68100", "68", 3),
    ("MONTREUIL", "93100", "93", 3),
    ("CAEN", "14000", "14", 4),
    ("NANCY", "54000", "54", 5),
    ("POITIERS", "86000", "86", 3),
    ("PAU", "64000", "64", 3),
    ("BAYONNE", "64100", "64", 2),
    ("LA ROCHELLE", "17000", "17", 2),
    ("VANNES", "56000", "56", 2),
    ("QUIMPER", "29000", "29", 2),
    ("SAINT-MALO", "35400", "35", 2),
    ("CHAMBERY", "73000", "73", 2),
    ("VALENCE", "26000", "26", 2),
    ("AVIGNON", "84000", "84", 3),
    ("COLMAR", "68000", "68", 2),
    ("TROYES", "10000", "10", 2),
    ("CHARTRES", "28000", "28", 2),
    ("BOURGES", "18000", "18", 2),
    ("NIORT", "79000", "79", 2),
    ("ANGOULEME", "16000", "16", 2),
    ("AGEN", "47000", "47", 1),
    ("CAHORS", "46000", "46", 1),
    ("RODEZ", "12000", "12", 1),
    ("ALBI", "81000", "81", 1),
    ("TARBES", "65000", "65", 1),
    ("AUCH", "32000", "32", 1),
    ("MONT-DE-MARSAN", "40000", "40", 1),
    ("PERIGUEUX", "24000", "24", 1),
    ("BRIVE-LA-GAILLARDE", "19100", "19", 1),
    ("AURILLAC", "15000", "15", 1),
    ("LE PUY-EN-VELAY", "43000", "43", 1),
    ("GAP", "05000", "05", 1),
    ("DIGNE-LES-BAINS", "04000", "04", 1),
    ("AJACCIO", "20000", "2A", 2),
    ("PORTO-VECCHIO", "20137", "2A", 1),
    ("BASTIA", "20200", "2B", 2),
    ("CORTE", "20250", "2B", 1),
    ("FORT-DE-FRANCE", "97200", "972", 2),
    ("POINTE-A-PITRE", "97110", "971", 2),
    ("SAINT-DENIS", "97400", "974", 3),
    ("SAINT-PIERRE", "97410", "974", 2),
    ("CAYENNE", "97300", "973", 1),
    ("MAMOUDZOU", "97600", "976", 1),
    ("SAINT-GERMAIN-EN-LAYE", "78100", "78", 2),
    ("VERSAILLES", "78000", "78", 3),
    ("NEUILLY-SUR-SEINE", "92200", "92", 2),
    ("CRETEIL", "94000", "94", 3),
    ("EVRY-COURCOURONNES", "91000", "91", 2),
    ("CERGY", "95000", "95", 2),
    ("MEAUX", "77100", "77", 2),
    ("MELUN", "77000", "77", 2),
    ("BOBIGNY", "93000", "93", 2),
    ("NANTERRE", "92000", "92", 2),
    ("ISSY-LES-MOULINEAUX", "92130", "92", 2),
    ("VINCENNES", "94300", "94", 1),
    ("SAINT-NAZAIRE", "44600", "44", 2),
    ("LORIENT", "56100", "56", 2),
    ("SAINT-BRIEUC", "22000", "22", 2),
    ("CHOLET", "49300", "49", 1),
    ("LAVAL", "53000", "53", 1),
    ("ALENCON", "61000", "61", 1),
    ("EVREUX", "27000", "27", 1),
    ("DIEPPE", "76200", "76", 1),
    ("CALAIS", "62100", "62", 2),
    ("BOULOGNE-SUR-MER", "62200", "62", 1),
    ("ARRAS", "62000", "62", 2),
    ("DOUAI", "59500", "59", 2),
    ("VALENCIENNES", "59300", "59", 2),
    ("DUNKERQUE", "59140", "59", 2),
    ("ROUBAIX", "59100", "59", 2),
    ("TOURCOING", "59200", "59", 2),
    ("SAINT-QUENTIN", "02100", "02", 1),
    ("BEAUVAIS", "60000", "60", 1),
    ("COMPIEGNE", "60200", "60", 1),
    ("CHALONS-EN-CHAMPAGNE", "51000", "51", 1),
    ("CHARLEVILLE-MEZIERES", "08000", "08", 1),
    ("EPINAL", "88000", "88", 1),
    ("BELFORT", "90000", "90", 1),
    ("MONTBELIARD", "25200", "25", 1),
    ("MACON", "71000", "71", 1),
    ("CHALON-SUR-SAONE", "71100", "71", 1),
    ("NEVERS", "58000", "58", 1),
    ("AUXERRE", "89000", "89", 1),
    ("VICHY", "03200", "03", 1),
    ("MONTLUCON", "03100", "03", 1),
    ("ROANNE", "42300", "42", 1),
    ("BOURG-EN-BRESSE", "01000", "01", 1),
    ("THONON-LES-BAINS", "74200", "74", 1),
    ("ARLES", "13200", "13", 1),
    ("CANNES", "06400", "06", 2),
    ("ANTIBES", "06600", "06", 2),
    ("FREJUS", "83600", "83", 1),
    ("HYERES", "83400", "83", 1),
    ("BEZIERS", "34500", "34", 2),
    ("SETE", "34200", "34", 1),
    ("NARBONNE", "11100", "11", 1),
    ("CARCASSONNE", "11000", "11", 1),
    ("MONTAUBAN", "82000", "82", 1),
    ("CASTRES", "81100", "81", 1),
    ("FOIX", "09000", "09", 1),
)
_STREET_TYPES = (
    ("R", 50),
    ("AV", 20),
    ("BD", 8),
    ("PL", 5),
    ("CHE", 5),
    ("RTE", 5),
    ("IMP", 2),
    ("ALL", 2),
    ("QUAI", 1),
    ("CRS", 1),
    ("SQ", 1),
)
_STREETS = (
    "DE LA REPUBLIQUE",
    "JEAN JAURES",
    "VICTOR HUGO",
    "DU GENERAL DE GAULLE",
    "DES ECOLES",
    "PASTEUR",
    "DE LA GARE",
    "DU MARECHAL FOCH",
    "GAMBETTA",
    "SAINT-MARTIN",
    "DES LILAS",
    "DE L'EGLISE",
    "NATIONALE",
    "DU MOULIN",
    "DE PARIS",
    "CARNOT",
    "DU 8 MAI 1945",
    "DES TILLEULS",
    "LOUIS PASTEUR",
    "DU CHATEAU",
    "EMILE ZOLA",
    "ARISTIDE BRIAND",
    "DE VERDUN",
    "DES ACACIAS",
    "DU PORT",
    "HENRI BARBUSSE",
    "DE LA LIBERATION",
    "ALSACE-LORRAINE",
    "DE LA PAIX",
    "DES CHÊNES",
    "CLÉMENCEAU",
    "DE L'HÔPITAL",
    "DU DOCTEUR SCHWEITZER",
    "ANATOLE FRANCE",
    "FRANÇOIS MITTERRAND",
)
_HOSPITAL_SERVICES = (
    "Cardiologie",
    "Pneumologie",
    "Urgences",
    "Radiologie",
    "Pédiatrie",
    "Maternité",
    "Gériatrie",
    "Chirurgie orthopédique",
    "Oncologie",
    "Néphrologie",
    "Neurologie",
    "Médecine interne",
    "Psychiatrie adulte",
    "Réanimation",
    "Laboratoire de biologie médicale",
    "Département d'information médicale",
)
_ORG_FUNCTIONS = (
    "secretariat",
    "accueil",
    "contact",
    "medecins",
    "resultats",
    "courrier",
    "admissions",
    "pharmacie",
    "laboratoire",
    "imagerie",
)


@dataclass(frozen=True, slots=True)
class _Structure:
    id_type: str
    national_id: str
    name: str
    trade_name: str
    domain: str
    hospital: bool
    fields: tuple[str, ...]  # L2 … Pays (11 values)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if not unicodedata.combining(c))


def _slug(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in _ascii(text).lower()).split()
    return "-".join(words)


class _Generator:
    def __init__(self, seed: int, rows: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.family = [*_FAMILY, *_FAMILY_SPECIAL]
        self.family_weights = [1.0 / (rank + 8) for rank in range(len(_FAMILY))] + [0.004] * len(
            _FAMILY_SPECIAL
        )
        self.cities = _CITIES
        self.city_weights = [c[3] for c in _CITIES]
        self.professions = _PROFESSIONS
        self.profession_weights = [p[2] for p in _PROFESSIONS]
        self.used: dict[str, int] = {}
        self.structures = [self._structure(n) for n in range(max(rows // 8, 50))]
        self.hospitals = [s for s in self.structures if s.hospital]
        self.next_rpps = 10000000000 + rng.randrange(1000000)
        self.next_adeli = 1000000 + rng.randrange(100000)

    # -- structures ----------------------------------------------------------------------

    def _place(self) -> tuple[str, str, str]:
        city, postcode, department, _ = self.rng.choices(self.cities, self.city_weights)[0]
        if len(postcode) == 3:  # Paris and Marseille: arrondissements
            postcode += f"{self.rng.randint(1, 16 if city == 'MARSEILLE' else 20):02d}"
        elif len(postcode) == 4:
            postcode += str(self.rng.randint(1, 9))
        return city, postcode, department

    def _structure(self, number: int) -> _Structure:
        rng = self.rng
        city, postcode, department = self._place()
        kind = rng.choices(
            ("hospital", "clinic", "pharmacy", "practice", "lab", "ehpad", "centre"),
            (6, 4, 22, 55, 5, 5, 3),
        )[0]
        family = rng.choices(self.family, self.family_weights)[0]
        pretty_city = city.replace("-", " ").title().replace(" ", "-")
        names = {
            "hospital": (f"CENTRE HOSPITALIER DE {city}", f"CH {pretty_city}"),
            "clinic": (f"CLINIQUE SAINT-{rng.choice(('JOSEPH', 'LUC', 'JEAN', 'MICHEL'))}", ""),
            "pharmacy": (
                f"PHARMACIE {rng.choice(('DU CENTRE', 'DE LA GARE', 'DU MARCHÉ', family))}",
                rng.choice(("", "", "Pharmacie Lafayette", "Grande Pharmacie")),
            ),
            "practice": (
                rng.choice(
                    (
                        f"CABINET MEDICAL {family}",
                        f"SELARL {family}",
                        f"SCM DES PRATICIENS DE {city}",
                        f"CABINET DU DOCTEUR {family}",
                        f"MAISON DE SANTÉ PLURIPROFESSIONNELLE DE {city}",
                    )
                ),
                "",
            ),
            "lab": (f"LABORATOIRE DE BIOLOGIE MÉDICALE {family}", rng.choice(("", "Biogroup"))),
            "ehpad": (f"EHPAD LES {rng.choice(('TILLEULS', 'GLYCINES', 'OLIVIERS'))}", ""),
            "centre": (f"CENTRE DE SANTÉ {rng.choice(('MUNICIPAL', 'DENTAIRE'))} DE {city}", ""),
        }[kind]
        if kind == "practice":
            id_type, national_id = "3", f"3{rng.randrange(10**13, 10**14)}"
        else:
            national_id = f"1{department[:2]}{rng.randrange(10**6, 10**7)}"
            id_type = "1"
        domain = f"{_slug(names[0])[:40]}-{number}.mssante.fr"
        street_type = rng.choices([t for t, _ in _STREET_TYPES], [w for _, w in _STREET_TYPES])[0]
        cedex = rng.random() < 0.03
        fields = (
            rng.choice(("BATIMENT A", "RESIDENCE LES PINS", "2EME ETAGE"))
            if rng.random() < 0.1
            else "",
            f"{rng.choice(('BP', 'CS'))} {rng.randint(10, 99999)}" if rng.random() < 0.05 else "",
            str(rng.randint(1, 250)) if rng.random() < 0.88 else "",
            rng.choice(("B", "BIS", "TER")) if rng.random() < 0.04 else "",
            street_type,
            rng.choice(_STREETS),
            "LIEU-DIT LE MOULIN" if rng.random() < 0.02 else "",
            f"{postcode} {city}" + (f" CEDEX {rng.randint(1, 9)}" if cedex else ""),
            postcode,
            department,
            "France",
        )
        return _Structure(
            id_type, national_id, names[0], names[1], domain, kind in ("hospital", "clinic"), fields
        )

    # -- lines ---------------------------------------------------------------------------

    def _unique(self, local: str, domain: str) -> str:
        key = f"{local}@{domain}"
        count = self.used.get(key, 0)
        self.used[key] = count + 1
        return key if count == 0 else f"{local}{count + 1}@{domain}"

    def per(self) -> list[str]:
        rng = self.rng
        code, label, _, domain, civility, specialties, adeli_share = rng.choices(
            self.professions, self.profession_weights
        )[0]
        specialty = rng.choice(specialties)
        family = rng.choices(self.family, self.family_weights)[0]
        if rng.random() < 0.04:
            family = f"{family}-{rng.choices(self.family, self.family_weights)[0]}"
        given = rng.choice(_GIVEN_F if rng.random() < 0.6 else _GIVEN_M)
        if rng.randrange(100) >= adeli_share:
            id_type, identifier = "8", str(self.next_rpps)
            self.next_rpps += rng.randint(1, 30)
        else:
            id_type, identifier = "0", f"{rng.choice(('75', '13', '69', '33'))}{self.next_adeli}"
            self.next_adeli += rng.randint(1, 30)
        structure = rng.choice(self.hospitals if rng.random() < 0.25 else self.structures)
        at_structure = structure.hospital and rng.random() < 0.5
        local = f"{_slug(given)}.{_slug(family)}".replace("--", "-")
        address = self._unique(local, structure.domain if at_structure else domain)
        category, category_label = rng.choices(_CATEGORIES, _CATEGORY_WEIGHTS)[0]
        with_structure = rng.random() < 0.95
        if civility == "DR" and rng.random() < 0.03:
            civility = "PR"
        return [
            "PER",
            address,
            id_type,
            identifier,
            id_type + identifier,
            structure.id_type if with_structure else "",
            structure.national_id if with_structure else "",
            f"Service de {rng.choice(_HOSPITAL_SERVICES).lower()}"
            if structure.hospital and rng.random() < 0.3
            else "",
            civility,
            family,
            given,
            category,
            category_label,
            code,
            label,
            *specialty,
            "True" if rng.random() < 0.9 else "False",
            *self._structure_fields(structure, with_structure),
        ]

    @staticmethod
    def _structure_fields(structure: _Structure, present: bool = True) -> list[str]:
        if not present:
            return [""] * 13
        return [structure.name, structure.trade_name, *structure.fields]

    def org(self) -> list[str]:
        rng = self.rng
        structure = rng.choice(self.structures)
        function = rng.choice(_ORG_FUNCTIONS)
        service = ""
        if structure.hospital and rng.random() < 0.6:
            service = rng.choice(_HOSPITAL_SERVICES)
            function = f"{function}.{_slug(service)}"
        return [
            "ORG",
            self._unique(function, structure.domain),
            "",
            "",
            "",
            structure.id_type,
            structure.national_id,
            service,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "True" if rng.random() < 0.95 else "False",
            *self._structure_fields(structure),
        ]

    def second_structure(self, line: list[str]) -> list[str]:
        """The same mailbox of a practitioner, at another structure."""
        structure = self.rng.choice(self.structures)
        return [
            *line[:5],
            structure.id_type,
            structure.national_id,
            "",
            *line[8:18],
            *self._structure_fields(structure),
        ]


def generate(rows: int, seed: int = 1, duplicates: float = 0.0012) -> Iterator[bytes]:
    """The lines of an extraction with ``rows`` lines after the header; ``duplicates`` is
    the share of PER lines whose mailbox appears again, at another structure, later on."""
    gen = _Generator(seed, rows)
    rng = gen.rng
    yield HEADER
    pending: list[tuple[int, list[str]]] = []
    written = 0
    while written < rows:
        if pending and pending[0][0] <= written:
            yield format_row(pending.pop(0)[1])
            written += 1
            continue
        line = gen.per() if rng.random() < 0.85 else gen.org()
        yield format_row(line)
        written += 1
        if line[0] == "PER" and rng.random() < duplicates:
            pending.append((written + rng.randint(1, 5000), gen.second_structure(line)))
            pending.sort(key=lambda item: item[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rows", type=int, default=535_000)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with args.output.open("wb") as out:
        for line in generate(args.rows, args.seed):
            out.write(line)
    print(f"wrote {args.rows} lines to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
