"""Vocabularies of the synthetic demo population (data only; the generator is demo.py).

Coded values come from two places:

- DICOM context groups (PS3.16), read at run time from pydicom's CID tables: the ``CID_*``
  numbers below name them.
- Explicit (value, scheme, meaning) lists, for value sets that PS3.16 leaves open (TID
  9002 medication and environmental factor, general problems, TID 3802 concerns, LOINC
  observations). Meanings are pydicom's where pydicom knows the code (a test checks this);
  the others are the preferred terms of SNOMED CT and LOINC.
"""

from __future__ import annotations

from datetime import date

Triple = tuple[str, str, str]


def _names(text: str) -> tuple[str, ...]:
    """Whitespace-separated names, without repeats, in their order."""
    return tuple(dict.fromkeys(text.split()))


# ---------------------------------------------------------------------------------------
# Identity

REFERENCE_DATE = date(2025, 1, 1)  # "today" of the population: ages and dates count back
TIMESTAMP = "2025-01-01T00:00:00Z"  # updated_at of every demo row, for reproducible files
MIN_AGE, MAX_AGE = 18, 95
HISTORY_YEARS = 30  # clinical events fall within this many years before REFERENCE_DATE
DEMO_ISSUER = "DEMO"
DEMO_ID_PREFIX = "DEMO"
DEMO_ID_DIGITS = 6
DUPLICATE_ID = "DEMO-DUP"  # the same Patient ID in two issuers' domains: two people
DUPLICATE_ISSUERS = ("ISSUER_A", "ISSUER_B")
OTHER_ID_ISSUER = "HOSPITAL_B"
SEX_WEIGHTS = (("F", 50), ("M", 49), ("O", 1))

FAMILY_NAMES = _names(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
    Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
    White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott
    Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
    Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris
    Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly
    Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza
    Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell
    Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher
    Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace
    Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford
    Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas
    Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon
    Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson
    Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols
    Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
    Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson
    Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews
    Pena Richards Contreras Willis Carpenter Lawrence Sandoval Muller Schneider Fischer Weber
    Becker Schulz Koch Richter Wolf Neumann Schwarz Zimmermann Braun Hofmann Hartmann Lange
    Dubois Durand Lefebvre Moreau Laurent Simon Michel Leroy Roux Fournier Girard Bonnet
    Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti
    DeLuca Costa Giordano Mancini Rizzo Lombardi Jansen DeVries VanDijk Bakker Visser Smit
    Meijer DeBoer Mulder Bos Vos Peeters Janssens Maes Jacobs Mertens Willems Claes Goossens
    Nielsen Jensen Pedersen Andersen Christensen Larsen Sorensen Rasmussen Johansson
    Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Novak Horvat Kovacs
    Nagy Szabo Toth Kowalski Nowak Wisniewski Wojcik Kaminski Lewandowski Zielinski Ivanov
    Petrov Popescu Ionescu Papadopoulos Yilmaz Kaya Demir Sahin Cohen Levi Mizrahi Haddad
    Khoury Khan Ali Hussain Ahmed Rahman Singh Kumar Sharma Gupta Das Reddy Rao Iyer Nair
    Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Sato Park Choi Jung
    Wang Zhang Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Lin Pham Hoang Vu Dang Bui Do
    Okafor Okoye Adeyemi Mensah Owusu Boateng Kamau Otieno Mwangi Banda Phiri Dlamini Nkosi
    Mokoena Oliveira Souza Pereira Almeida Ferreira Carvalho Gomes Ribeiro Rocha Dias
    OBrien OConnor Byrne Walsh Ryan Doyle Kavanagh Quinn Fitzgerald MacLeod Fraser Campbell
    """
)

FEMALE_GIVEN_NAMES = _names(
    """
    Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty
    Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah
    Stephanie Dorothy Rebecca Sharon Laura Cynthia Amy Kathleen Angela Shirley Brenda Emma
    Anna Pamela Nicole Samantha Katherine Christine Helen Debra Rachel Carolyn Janet Maria
    Catherine Heather Diane Olivia Julie Joyce Victoria Ruth Virginia Lauren Kelly Christina
    Joan Evelyn Judith Andrea Hannah Megan Cheryl Jacqueline Martha Madison Teresa Gloria
    Sara Janice Ann Kathryn Abigail Sophia Frances Jean Alice Judy Isabella Julia Grace
    Amber Denise Danielle Marilyn Beverly Charlotte Natalie Theresa Diana Brittany Doris
    Kayla Alexis Lori Marie Ingrid Astrid Greta Sofia Lucia Elena Chiara Giulia Francesca
    Camille Chloe Manon Ines Leonie Lena Mia Anja Katarzyna Agnieszka Zofia Olga Irina
    Natalia Svetlana Fatima Aisha Leila Yasmin Zainab Noor Priya Anjali Deepa Kavya Lakshmi
    Mei Ling Xiu Yan Hui Li Na Yuki Haruka Sakura Aiko Min-ji Seo-yeon Ji-woo Thi Lan
    Ngozi Amara Chioma Abena Akosua Wanjiru Zanele Thandiwe Nomvula Ana Beatriz Camila
    Gabriela Valentina Lucia Isabel Carmen Rosa Pilar Dolores Siobhan Aoife Niamh Saoirse
    Freya Sienna Maeve Esther Miriam Leah Tamar Noa Ayla Elif Zeynep Defne Eleni Sofie Ida
    """
)

MALE_GIVEN_NAMES = _names(
    """
    James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel
    Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy
    Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin
    Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry
    Tyler Aaron Jose Adam Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter
    Christian Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan
    Jesse Bryan Billy Bruce Gabriel Joe Logan Alan Juan Albert Willie Elijah Wayne Randy
    Vincent Mason Roy Ralph Bobby Russell Bradley Philip Eugene Lukas Felix Maximilian Jonas
    Leon Paul Matteo Luca Giuseppe Marco Alessandro Lorenzo Pierre Louis Hugo Antoine Mathieu
    Piotr Krzysztof Tomasz Jakub Ivan Dmitri Sergei Alexei Mohammed Ahmed Omar Ali Hassan
    Youssef Karim Rahul Arjun Vikram Sanjay Rohan Amit Wei Jun Hao Lei Ming Chen Hiroshi
    Takashi Kenji Haruto Sota Min-jun Seo-jun Ji-ho Minh Duc Tuan Chinedu Emeka Kwame Kofi
    Yaw Juma Kamau Sipho Thabo Mandla Joao Pedro Lucas Gabriel Rafael Diego Carlos Javier
    Miguel Alejandro Sean Liam Cian Oisin Eoin Magnus Erik Lars Anders Nils Sven David
    Yosef Eitan Ari Mehmet Mustafa Emre Burak Nikos Giorgos Dimitris Stefan Andrei Mihai
    """
)

# ---------------------------------------------------------------------------------------
# DICOM context groups (PS3.16) drawn from via pydicom's tables

CID_LATERALITY = 244
CID_SIDE = 6022  # Left breast / Right breast / Both breasts
# Words in a breast procedure's name that fix its side (CID 6022 code values).
SIDE_WORDS = (("bilateral", "63762007"), ("left", "80248007"), ("right", "73056007"))
CID_BREAST_FINDING = 6055
CID_INTERVENTIONAL_RESULT = 6063
CID_GYNECOLOGICAL_HORMONE = 6080
CID_BREAST_RISK_FACTOR = 6081
CID_GYNECOLOGICAL_PROCEDURE = 6082
CID_BREAST_PROCEDURE = 6083
CID_GENERAL_RISK_FACTOR = 6087
CID_SUBSTANCE = 6089
CID_CARDIOVASCULAR_SURGERY = 3721
CID_DIABETIC_THERAPY = 3722
CID_SMOKING_HISTORY = 3724
CID_CARDIAC_RISK_FACTOR = 3756
CID_CARDIAC_DIAGNOSTIC_PROCEDURE = 3757
CID_HYPERTENSION_THERAPY = 3760
CID_ANTILIPEMIC_AGENT = 3761
CID_ANTIARRHYTHMIC_AGENT = 3762
CID_MI_THERAPY = 3764
CID_IMPLANTED_DEVICE = 3777
CID_STAGE = 3778
CID_FAMILY_MEMBER = 7451

# Members left out when drawing from a context group, by code value: not lateral breast
# procedures or findings, neonatal risk factors, or not applicable to a sex.
BREAST_PROCEDURE_EXCLUDED = frozenset(
    {"44139-4", "46305-9", "111410", "111411", "23719005", "367336001", "169413002",
     "108290001", "45211000", "169167001", "66377006"}
)  # fmt: skip
BREAST_PROCEDURE_FEMALE_ONLY = frozenset({"27315000", "302343007", "33496007"})
BREAST_PROCEDURE_WITH_RESULT = frozenset(
    {"44578009", "387736007", "274331003", "287572003", "396487001", "111564"}
)
BREAST_FINDING_EXCLUDED = frozenset({"111480", "255052006", "274303007", "247441003"})
BREAST_FINDING_FEMALE_ONLY = frozenset({"271989003", "111478", "290113009", "162164007"})
BREAST_FAMILY_RISK_FACTORS = frozenset({"111559", "111560", "111561", "429740004"})
MALE_RELATIVE_RISK_FACTORS = frozenset({"111562"})  # family history of prostate cancer
# Risk factors that are a relative's condition: they name the family member (CID 7451).
FAMILY_RISK_FACTORS = BREAST_FAMILY_RISK_FACTORS | MALE_RELATIVE_RISK_FACTORS | {"111574"}
FEMALE_ONLY_RISK_FACTORS = frozenset(
    {"111554", "111555", "102877006", "111551", "111552", "111565", "111566", "111567",
     "111568", "111569", "111570", "111571", "111572", "111573", "111574", "161806007",
     "161763005", "161765003", "161807003", "16356006", "161798008"}
)  # fmt: skip
CARDIAC_RISK_EXCLUDED = frozenset({"444161008", "C0456029"})  # neonatal
HORMONE_EXCLUDED = frozenset({"111542"})  # "Unspecified gynecological hormone"
FEMALE_RELATIVES = frozenset(
    {"25211005", "17945006", "2272004", "65656005", "83420006", "270002", "73678001"}
)
MALE_RELATIVES = frozenset(
    {"62296006", "60614009", "11993008", "9947008", "38048003", "113160008", "45929001"}
)

# Substances (CID 6089) by how often a patient reports them; others weigh 1.
SUBSTANCE_WEIGHTS = {"255641001": 40, "419442005": 35, "66562002": 20, "398705004": 6}

# ---------------------------------------------------------------------------------------
# Explicit value lists

SCT, DCM, LN, UCUM = "SCT", "DCM", "LN", "UCUM"

MEDICATION_ACTIVE: Triple = ("55561003", SCT, "Active")
MEDICATION_INACTIVE: Triple = ("73425007", SCT, "Inactive")

# (value, scheme, meaning, brand and dose)
MEDICATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("372567009", SCT, "Metformin", "Glucophage 500 mg twice daily"),
    ("373444002", SCT, "Atorvastatin", "Lipitor 20 mg daily"),
    ("387584000", SCT, "Simvastatin", "Zocor 40 mg at night"),
    ("386873009", SCT, "Lisinopril", "Zestril 10 mg daily"),
    ("387458008", SCT, "Aspirin", "Aspirin 81 mg daily"),
    ("386864001", SCT, "Amlodipine", "Norvasc 5 mg daily"),
    ("372826007", SCT, "Metoprolol", "Lopressor 50 mg twice daily"),
    ("387506000", SCT, "Atenolol", "Tenormin 50 mg daily"),
    ("386952008", SCT, "Clopidogrel", "Plavix 75 mg daily"),
    ("387475002", SCT, "Furosemide", "Lasix 40 mg daily"),
    ("48603004", SCT, "Warfarin", "Coumadin 5 mg daily"),
    ("796001", SCT, "Digoxin", "Lanoxin 0.125 mg daily"),
    ("71759000", SCT, "Nitroglycerin", "Nitrostat 0.4 mg as needed"),
    ("47898004", SCT, "Verapamil", "Calan 80 mg three times daily"),
    ("116602009", SCT, "Prednisone", "Deltasone 5 mg daily"),
)

ENVIRONMENTAL_FACTORS: tuple[Triple, ...] = (
    ("43381005", SCT, "Passive smoker"),
    ("228524006", SCT, "Exposed to tobacco smoke at home"),
    ("228523000", SCT, "Exposed to tobacco smoke at work"),
    ("228525007", SCT, "Exposed to tobacco smoke in public places"),
    ("88488004", SCT, "Lead"),
    ("51800004", SCT, "^222^Radon"),
    ("415770004", SCT, "Ultraviolet"),
)

BREAST_SITE: Triple = ("76752008", SCT, "Breast")

GENERAL_PROBLEMS: tuple[Triple, ...] = (
    ("195967001", SCT, "Asthma"),
    ("38341003", SCT, "Hypertension"),
    ("49436004", SCT, "Atrial Fibrillation"),
    ("42343007", SCT, "Congestive heart failure"),
    ("53741008", SCT, "Coronary Artery Disease"),
    ("44054006", SCT, "Diabetes mellitus type 2"),
    ("13645005", SCT, "Chronic obstructive lung disease"),
    ("40930008", SCT, "Hypothyroidism"),
    ("396275006", SCT, "Osteoarthritis"),
    ("235595009", SCT, "Gastroesophageal reflux disease"),
    ("59282003", SCT, "Pulmonary embolism"),
    ("42399005", SCT, "Renal failure"),
)

GENERAL_PROCEDURES: tuple[Triple, ...] = (
    ("80146002", SCT, "Appendectomy"),
    ("38102005", SCT, "Cholecystectomy"),
    ("73761001", SCT, "Colonoscopy"),
    ("77477000", SCT, "Computed tomography"),
    ("40701008", SCT, "Echocardiography"),
)

GENERAL_SURGERY: tuple[Triple, ...] = (
    ("80146002", SCT, "Appendectomy"),
    ("38102005", SCT, "Cholecystectomy"),
)

# TID 3802 specific concerns: (concern, context group of its therapy or None)
KIDNEY_DISEASE: Triple = ("275552000", SCT, "History of kidney disease")
CARDIAC_CONCERNS: tuple[tuple[Triple, int | None], ...] = (
    (("161445009", SCT, "History of Diabetes"), CID_DIABETIC_THERAPY),
    (("161501007", SCT, "History of Hypertension"), CID_HYPERTENSION_THERAPY),
    (("414416008", SCT, "History of hypercholesterolemia"), CID_ANTILIPEMIC_AGENT),
    (("399211009", SCT, "History of Myocardial Infarction"), CID_MI_THERAPY),
    (("698247007", SCT, "Arrhythmia"), CID_ANTIARRHYTHMIC_AGENT),
    (KIDNEY_DISEASE, None),
)

# TID 3802 social history
TOBACCO_SMOKING_BEHAVIOR: Triple = ("365981007", SCT, "Tobacco Smoking Behavior")
DRUG_MISUSE_BEHAVIOR: Triple = ("228366006", SCT, "Drug misuse behavior")
DRUG_MISUSE_VALUES: tuple[tuple[Triple, int], ...] = (
    (("228367002", SCT, "Does not misuse drugs"), 90),
    (("44870007", SCT, "Misused drugs in past"), 8),
    (("361055000", SCT, "Misuses drugs"), 2),
)

# TID 3802 laboratory values
HDL_CHOLESTEROL: Triple = ("2086-7", LN, "Cholesterol in HDL [Mass/volume] in Serum or Plasma")
LDL_CHOLESTEROL: Triple = ("2089-1", LN, "Cholesterol in LDL [Mass/volume] in Serum or Plasma")
MG_PER_DL: Triple = ("mg/dL", UCUM, "mg/dL")

FAMILY_DISEASES: tuple[Triple, ...] = (
    ("22298006", SCT, "Myocardial Infarction"),
    ("53741008", SCT, "Coronary Artery Disease"),
    ("38341003", SCT, "Hypertension"),
    ("44054006", SCT, "Diabetes mellitus type 2"),
    ("230690007", SCT, "Cerebrovascular Accident or Stroke"),
    ("363406005", SCT, "Cancer of colon"),
    ("93880001", SCT, "Lung cancer"),
    ("408643008", SCT, "Infiltrating ductal carcinoma of breast"),
)

# TID 9001 gynecological history concepts and units
YEARS: Triple = ("a", UCUM, "year")
NO_UNITS: Triple = ("1", UCUM, "no units")
AGE_AT_MENARCHE: Triple = ("111518", DCM, "Age when first menstrual period occurred")
AGE_AT_FIRST_FULL_TERM_PREGNANCY: Triple = ("111519", DCM, "Age at First Full Term Pregnancy")
AGE_AT_MENOPAUSE: Triple = ("111520", DCM, "Age at Menopause")
GRAVIDA: Triple = ("11996-6", LN, "Gravida")
PARA: Triple = ("11977-6", LN, "Para")
ABORTA: Triple = ("11612-9", LN, "Aborta")
LAST_MENSTRUAL_PERIOD: Triple = ("11955-2", LN, "Date of last menstrual period")
