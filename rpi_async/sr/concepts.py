"""Coded concepts used as concept names and constant values by the templates (PS3.16).

SNOMED CT concepts use the current designator ``SCT`` (the retired SNOMED-RT ``SRT`` codes
of older editions map to these). Code meanings follow PS3.16 where it gives one.
"""

from __future__ import annotations

from rpi_async.dicom.codes import Code

# --- root concepts -------------------------------------------------------------------
RELEVANT_PATIENT_INFORMATION = Code("111517", "DCM", "Relevant Patient Information")
RELEVANT_PATIENT_INFORMATION_BREAST = Code(
    "111511", "DCM", "Relevant Patient Information for Breast Imaging"
)
HISTORY = Code("11329-0", "LN", "History")

# --- TID 1204, TID 1007 --------------------------------------------------------------
LANGUAGE_OF_CONTENT = Code("121049", "DCM", "Language of Content Item and Descendants")
ENGLISH = Code("en", "RFC5646", "English")
SUBJECT_AGE = Code("121033", "DCM", "Subject Age")

# --- units (UCUM) ----------------------------------------------------------------------
YEARS = Code("a", "UCUM", "year")
WEEKS = Code("wk", "UCUM", "week")
MONTHS = Code("mo", "UCUM", "month")
DAYS = Code("d", "UCUM", "day")
NO_UNITS = Code("1", "UCUM", "no units")
MG_PER_DL = Code("mg/dL", "UCUM", "mg/dL")

# --- CID 231 Yes-No Only ---------------------------------------------------------------
YES = Code("373066001", "SCT", "Yes")
NO = Code("373067005", "SCT", "No")

# --- shared concept names --------------------------------------------------------------
ROLE_OF_PERSON_REPORTING = Code("111534", "DCM", "Role of person reporting")
LATERALITY = Code("272741003", "SCT", "Laterality")
FINDING_SITE = Code("363698007", "SCT", "Finding Site")
COMMENT = Code("121106", "DCM", "Comment")
DURATION = Code("103335007", "SCT", "Duration")
FREQUENCY = Code("272123002", "SCT", "Frequency")
PROCEDURE_DATETIME = Code("122146", "DCM", "Procedure DateTime")
PROCEDURE_RESULT = Code("122177", "DCM", "Procedure Result")
DATETIME_STARTED = Code("111526", "DCM", "DateTime Started")
DATETIME_ENDED = Code("111527", "DCM", "DateTime Ended")
MEDICATION_TYPE = Code("111516", "DCM", "Medication Type")
HISTORY_OF_MEDICATION_USE = Code("10160-0", "LN", "History of Medication use")

# --- TID 9001 Gynecological History ----------------------------------------------------
GYNECOLOGICAL_HISTORY = Code("267011001", "SCT", "Gynecological History")
DATE_OF_LAST_MENSTRUAL_PERIOD = Code("11955-2", "LN", "Date of last menstrual period")
AGE_AT_FIRST_MENSES = Code("111518", "DCM", "Age when first menstrual period occurred")
AGE_AT_FIRST_FULL_TERM_PREGNANCY = Code("111519", "DCM", "Age at First Full Term Pregnancy")
AGE_AT_MENOPAUSE = Code("111520", "DCM", "Age at Menopause")
AGE_AT_HYSTERECTOMY = Code("111521", "DCM", "Age when hysterectomy performed")
EXTENT = Code("255590007", "SCT", "Extent")
COMPLETE = Code("255594003", "SCT", "Complete")
PARTIAL = Code("255609007", "SCT", "Partial")
AGE_LEFT_OVARY_REMOVED = Code("111522", "DCM", "Age when left ovary removed")
AGE_RIGHT_OVARY_REMOVED = Code("111523", "DCM", "Age when right ovary removed")
PARA = Code("11977-6", "LN", "Para")
TERM = Code("11639-2", "LN", "Term")
PRETERM = Code("11637-6", "LN", "Preterm")
LIVE_BIRTHS = Code("11636-8", "LN", "Live Births")
LBW_OR_IUGR = Code("111593", "DCM", "LBW or IUGR")
GRAVIDA = Code("11996-6", "LN", "Gravida")
ABORTA = Code("11612-9", "LN", "Aborta")
ECTOPIC_PREGNANCIES = Code("33065-4", "LN", "Ectopic Pregnancies")
BREAST_FEEDING_HISTORY = Code("111543", "DCM", "Breast feeding history")
AVERAGE_BREAST_FEEDING_PERIOD = Code("111544", "DCM", "Average breast feeding period")
PREGNANCY_OBSERVABLE = Code("364320009", "SCT", "Pregnancy observable")
MENSTRUAL_CYCLE_PHASE = Code("111391", "DCM", "Menstrual Cycle Phase")

# --- TID 9002 Medication, Substance, Environmental Exposure -----------------------------
CLASSIFICATION = Code("278201002", "SCT", "Classification")
AGE_STARTED = Code("111524", "DCM", "Age Started")
AGE_ENDED = Code("111525", "DCM", "Age Ended")
ONGOING = Code("111528", "DCM", "Ongoing")
BRAND_NAME = Code("111529", "DCM", "Brand Name")
ROUTE_OF_ADMINISTRATION = Code("410675002", "SCT", "Route of administration")
SITE_OF = Code("272737002", "SCT", "Site of")
SUBSTANCE_USE_HISTORY = Code("111545", "DCM", "Substance Use History")
USED_SUBSTANCE_TYPE = Code("111546", "DCM", "Used Substance Type")
ENVIRONMENTAL_EXPOSURE_HISTORY = Code("111547", "DCM", "Environmental Exposure History")
ENVIRONMENTAL_FACTOR = Code("111548", "DCM", "Environmental Factor")
DOSAGE = Code("260911001", "SCT", "Dosage")
STATUS = Code("33999-4", "LN", "Status")

# --- TID 9003 Previous Procedures ------------------------------------------------------
RELEVANT_PREVIOUS_PROCEDURES = Code("111513", "DCM", "Relevant Previous Procedures")
PREVIOUS_PROCEDURE = Code("111531", "DCM", "Previous Procedure")
PROCEDURE_MODIFIER = Code("111464", "DCM", "Procedure Modifier")
NUMBER_OF_OCCURRENCES = Code("246432004", "SCT", "Number of occurrences")
COMPLICATION = Code("116224001", "SCT", "Complication of Procedure")

# --- TID 9004 Indicated Problems -------------------------------------------------------
PROBLEM_LIST = Code("11450-4", "LN", "Problem List")
INDICATED_PROBLEM = Code("111533", "DCM", "Indicated Problem")
DATETIME_PROBLEM_OBSERVED = Code("111535", "DCM", "DateTime problem observed")
DATETIME_PROBLEM_RESOLVED = Code("121433", "DCM", "DateTime Problem Resolved")

# --- TID 9005 Risk Factors -------------------------------------------------------------
RELEVANT_RISK_FACTORS = Code("111515", "DCM", "Relevant Risk Factors")
RISK_FACTOR = Code("80943009", "SCT", "Risk factor")
FAMILY_HISTORY_OF = Code("57177007", "SCT", "Family history of")
AGE_AT_OCCURRENCE = Code("111538", "DCM", "Age at Occurrence")
FAMILY_MEMBER_WITH_RISK_FACTOR = Code("111537", "DCM", "Family Member with Risk Factor")

# --- TID 3802 Cardiovascular Patient History and its sub-templates ---------------------
CONCERN = Code("121430", "DCM", "Concern")
PROBLEM = Code("55607006", "SCT", "Problem")
DATETIME_CONCERN_NOTED = Code("121431", "DCM", "DateTime Concern Noted")
DATETIME_CONCERN_RESOLVED = Code("121432", "DCM", "DateTime Concern Resolved")
THERAPY = Code("277132007", "SCT", "Therapy")
STAGE = Code("261612004", "SCT", "Stage")
HISTORY_OF_DIABETES = Code("161445009", "SCT", "History of Diabetes")
HISTORY_OF_HYPERTENSION = Code("161501007", "SCT", "History of Hypertension")
HISTORY_OF_HYPERCHOLESTEROLEMIA = Code("414416008", "SCT", "History of hypercholesterolemia")
ARRHYTHMIA = Code("44808001", "SCT", "Arrhythmia")
ARRHYTHMIA_CURRENT = Code("698247007", "SCT", "Arrhythmia")
HISTORY_OF_MYOCARDIAL_INFARCTION = Code("399211009", "SCT", "History of Myocardial Infarction")
HISTORY_OF_KIDNEY_DISEASE = Code("275552000", "SCT", "History of kidney disease")
SOCIAL_HISTORY = Code("29762-2", "LN", "Social History")
TOBACCO_SMOKING_BEHAVIOR = Code("365981007", "SCT", "Tobacco Smoking Behavior")
DRUG_MISUSE_BEHAVIOR = Code("228366006", "SCT", "Drug misuse behavior")
PAST_SURGICAL_HISTORY = Code("10167-5", "LN", "Past Surgical History")
SURGICAL_PROCEDURE = Code("387713003", "SCT", "Surgical procedure")
RELEVANT_DIAGNOSTIC_TESTS = Code(
    "30954-2", "LN", "Relevant Diagnostic Tests and/or Laboratory Data"
)
DIAGNOSTIC_PROCEDURE = Code("103693007", "SCT", "Diagnostic procedure")
HDL_CHOLESTEROL = Code("2086-7", "LN", "Cholesterol in HDL")
LDL_CHOLESTEROL = Code("2089-1", "LN", "Cholesterol in LDL")
HISTORY_OF_FAMILY_MEMBER_DISEASES = Code("10157-6", "LN", "History of family member diseases")
FAMILY_HISTORY_OF_CLINICAL_FINDING = Code("416471007", "SCT", "Family history of clinical finding")
SUBJECT_RELATIONSHIP = Code("408732007", "SCT", "Subject relationship")
HISTORY_OF_MEDICAL_DEVICE_USE = Code("46264-8", "LN", "History of medical device use")
MEDICAL_DEVICE_USED = Code("121436", "DCM", "Medical Device Used")
