"""Every coded concept doseflow reads or writes, declared once: the `Code` type and the code
values of DICOM PS3.16 (DCM, SNOMED as SCT/SRT, UCUM) and of the vendors' private schemes.

Readers (services/extractors/rdsr/*, the classifier, backfill) and the RDSR writer
(services/toshiba_builder/rdsr_writer.py) import the names below; no other product module
writes a code value (tests/test_architecture.py checks it). To read a new concept, add it here
in its template's group, with PS3.16's meaning.

A `Code` is equal to, and hashes like, the plain (scheme, value) pair it starts with: objects
are matched by code, never by meaning text, because vendors misspell and recase CodeMeaning
(GE writes "X-ray", "Scope Of Accumulation"...). The meaning is carried for people (warnings
name the concept) and for the writer (it writes PS3.16's meaning), and is never compared.
`also` lists the other spellings of the same concept (a SNOMED concept's SRT and SCT codes, a
retired code still sent by older systems): readers accept every one, the writer writes the first.

Facts only: code values and meanings as PS3.16 publishes them; nothing here is read from a file.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple


class _SchemeValue(NamedTuple):
    scheme: str  # CodingSchemeDesignator
    value: str  # CodeValue (or LongCodeValue / URNCodeValue)


class Code(_SchemeValue):
    """One coded concept. Compared and hashed as (scheme, value) only: see the module's note.

    No __slots__: `meaning` and `also` live in the instance's own dict, outside the tuple, so
    they never take part in == or hash. Instances made from an object's codes (shared.sr) carry
    neither and cost no more than the tuple."""

    meaning: str = ""  # PS3.16 CodeMeaning (or the meaning a report holds, for the writer)
    also: tuple["Code", ...] = ()  # other spellings of the same concept, read as this one

    def __new__(cls, scheme: str, value: str, meaning: str = "", also: Iterable["Code"] = ()):
        self = _SchemeValue.__new__(cls, scheme, value)
        if meaning:
            self.meaning = meaning
        if also:
            self.also = tuple(also)
        return self

    @classmethod
    def plain(cls, scheme: str, value: str) -> "Code":
        """A code as an object sends it (no meaning, no other spellings), made at the speed of a
        plain tuple: readers make one per content item they look at."""
        return tuple.__new__(cls, (scheme, value))

    @property
    def codes(self) -> tuple["Code", ...]:
        """Every spelling of the concept, this one first."""
        return (self, *self.also)

    def __str__(self) -> str:
        """'Exposure Time (DCM 113824)': how warnings name a concept."""
        return f"{self.meaning} ({self.scheme} {self.value})" if self.meaning else f"{self.scheme} {self.value}"


def DCM(value: str, meaning: str = "", also: Iterable[Code] = ()) -> Code:
    """A code of the DICOM Controlled Terminology (PS3.16 Annex D)."""
    return Code("DCM", value, meaning, also)


def SCT(value: str, meaning: str = "", also: Iterable[Code] = ()) -> Code:
    """A SNOMED CT concept id (the scheme PS3.16 uses today)."""
    return Code("SCT", value, meaning, also)


def SRT(value: str, meaning: str = "", also: Iterable[Code] = ()) -> Code:
    """A SNOMED RT id (retired in PS3.16 for SCT, still sent by many systems)."""
    return Code("SRT", value, meaning, also)


def UCUM(value: str, meaning: str) -> Code:
    """A unit of measurement (UCUM), as MeasurementUnitsCodeSequence holds it."""
    return Code("UCUM", value, meaning)


# --- document roots -----------------------------------------------------------------------------
# The root concept of an X-Ray Radiation Dose SR (TID 10001 and TID 10011 both start here).
X_RAY_RADIATION_DOSE_REPORT = DCM("113701", "X-Ray Radiation Dose Report")
# Siemens Arcadis Varic "Radiation Summary Report": an Enhanced SR with a private root.
SIEMENS_RADSUM = "99SMS_RADSUM"
SIEMENS_RADIATION_SUMMARY = Code(SIEMENS_RADSUM, "C-10", "Radiation Summary Report")

# --- observation context (TID 1002 observer, TID 10001/10011 header rows) -----------------------
PROCEDURE_REPORTED = DCM("121058", "Procedure reported")
OBSERVER_TYPE = DCM("121005", "Observer Type")
DEVICE = DCM("121007", "Device")  # an Observer Type value
DEVICE_OBSERVER_UID = DCM("121012", "Device Observer UID")
DEVICE_OBSERVER_NAME = DCM("121013", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER = DCM("121014", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL_NAME = DCM("121015", "Device Observer Model Name")
DEVICE_OBSERVER_SERIAL_NUMBER = DCM("121016", "Device Observer Serial Number")
SCOPE_OF_ACCUMULATION = DCM("113705", "Scope of Accumulation")
STUDY = DCM("113014", "Study")  # a Scope of Accumulation value
STUDY_INSTANCE_UID = DCM("110180", "Study Instance UID")
START_OF_IRRADIATION = DCM("113809", "Start of X-Ray Irradiation")
END_OF_IRRADIATION = DCM("113810", "End of X-Ray Irradiation")
COMMENT = DCM("121106", "Comment")
SOURCE_OF_DOSE_INFORMATION = DCM("113854", "Source of Dose Information")

# Procedure Reported values: which kind of dose report the document is.
COMPUTED_TOMOGRAPHY_XRAY = SCT("77477000", "Computed Tomography X-Ray")
PROJECTION_XRAY = DCM("113704", "Projection X-Ray")
MAMMOGRAPHY = SRT("P5-40010", "Mammography", also=[SCT("71651007")])

# CID 10021 Source of CT Dose Information: where a written report's values came from.
AUTOMATED_DATA_COLLECTION = DCM("113856", "Automated Data Collection")
MANUAL_ENTRY = DCM("113857", "Manual Entry")
COPIED_FROM_IMAGE_ATTRIBUTES = DCM("113866", "Copied From Image Attributes")
COMPUTED_FROM_IMAGE_ATTRIBUTES = DCM("113867", "Computed From Image Attributes")
DERIVED_FROM_HUMAN_READABLE_REPORTS = DCM("113868", "Derived From Human-Readable Reports")

# --- projection X-ray: accumulated dose (TID 10002, 10004, 10007) -------------------------------
ACCUMULATED_DOSE = DCM("113702", "Accumulated X-Ray Dose Data")
DAP_TOTAL = DCM("113722", "Dose Area Product Total")
DOSE_RP_TOTAL = DCM("113725", "Dose (RP) Total")
FLUORO_DAP_TOTAL = DCM("113726", "Fluoro Dose Area Product Total")
ACQUISITION_DAP_TOTAL = DCM("113727", "Acquisition Dose Area Product Total")
FLUORO_DOSE_RP_TOTAL = DCM("113728", "Fluoro Dose (RP) Total")
ACQUISITION_DOSE_RP_TOTAL = DCM("113729", "Acquisition Dose (RP) Total")
TOTAL_FLUORO_TIME = DCM("113730", "Total Fluoro Time")
TOTAL_RADIOGRAPHIC_FRAMES = DCM("113731", "Total Number of Radiographic Frames")
TOTAL_ACQUISITION_TIME = DCM("113855", "Total Acquisition Time")
# TID 10005 mammography accumulated dose
ACCUMULATED_AGD = DCM("111637", "Accumulated Average Glandular Dose")
# The kind of projection system (TID 10001 Acquisition Device Type, CID 10032)
ACQUISITION_DEVICE_TYPE = DCM("122142", "Acquisition Device Type")
FLUOROSCOPY_GUIDED = DCM("113957", "Fluoroscopy-guided Projection Radiography System")
INTEGRATED = DCM("113958", "Integrated Projection Radiography System")
CASSETTE_BASED = DCM("113959", "Cassette-based Projection Radiography System")

# --- projection X-ray: irradiation event (TID 10003) --------------------------------------------
IRRADIATION_EVENT = DCM("113706", "Irradiation Event X-Ray Data")
ACQUISITION_PLANE = DCM("113764", "Acquisition Plane")
IRRADIATION_EVENT_UID = DCM("113769", "Irradiation Event UID")
DATETIME_STARTED = DCM("111526", "DateTime Started")
EVENT_TYPE = DCM("113721", "Irradiation Event Type")
ACQUISITION_PROTOCOL = DCM("125203", "Acquisition Protocol")
TARGET_REGION = DCM("123014", "Target Region")
ANATOMICAL_STRUCTURE = SRT("T-D0005", "Anatomical Structure", also=[SCT("91723000")])
LATERALITY = SRT("G-C171", "Laterality", also=[SCT("272741003")])
IMAGE_VIEW = DCM("111031", "Image View")
REFERENCE_POINT_DEFINITION = DCM("113780", "Reference Point Definition")
DAP = DCM("122130", "Dose Area Product")
ENTRANCE_EXPOSURE_AT_RP = DCM("111636", "Entrance Exposure at RP")
HALF_VALUE_LAYER = DCM("111634", "Half Value Layer")

# Acquisition Plane values (CID 10003)
PLANE_A = DCM("113620", "Plane A")
PLANE_B = DCM("113621", "Plane B")
SINGLE_PLANE = DCM("113622", "Single Plane")
ALL_PLANES = DCM("113890", "All Planes")
# Irradiation Event Type values (CID 10002): fluoroscopy marks an RF event; a radiograph from an
# image header is written as a stationary acquisition.
FLUOROSCOPY = SRT("P5-06000", "Fluoroscopy", also=[SCT("44491008")])
STATIONARY_ACQUISITION_EVENT = DCM("113611", "Stationary Acquisition")

# X-ray source (TID 10003b)
DOSE_RP = DCM("113738", "Dose (RP)")
AVERAGE_GLANDULAR_DOSE = DCM("111631", "Average Glandular Dose")
FLUORO_MODE = DCM("113732", "Fluoro Mode")
PULSE_RATE = DCM("113791", "Pulse Rate")
NUMBER_OF_PULSES = DCM("113768", "Number of Pulses")
IRRADIATION_DURATION = DCM("113742", "Irradiation Duration")
AVERAGE_TUBE_CURRENT = DCM("113767", "Average X-Ray Tube Current")
TUBE_CURRENT = DCM("113734", "X-Ray Tube Current")
KVP = DCM("113733", "KVP")
# 113824 is the current code (TID 10003b and TID 10013); 113735 its retired predecessor, still
# sent by older systems.
EXPOSURE_TIME = DCM("113824", "Exposure Time", also=[DCM("113735")])
EXPOSURE = DCM("113736", "Exposure")
PULSE_WIDTH = DCM("113793", "Pulse Width")
ANODE_TARGET_MATERIAL = DCM("111632", "Anode Target Material")
XRAY_FILTERS = DCM("113771", "X-Ray Filters")
FILTER_TYPE = DCM("113772", "X-Ray Filter Type")
FILTER_MATERIAL = DCM("113757", "X-Ray Filter Material")
FILTER_THICKNESS_MIN = DCM("113758", "X-Ray Filter Thickness Minimum")
FILTER_THICKNESS_MAX = DCM("113773", "X-Ray Filter Thickness Maximum")
COLLIMATED_FIELD_AREA = DCM("113790", "Collimated Field Area")
COLLIMATED_FIELD_HEIGHT = DCM("113788", "Collimated Field Height")
COLLIMATED_FIELD_WIDTH = DCM("113789", "Collimated Field Width")

# X-Ray Filter Type values (CID 10007) and the materials of filters (CID 10006) and anode targets
# (CID 10016). Image headers carry defined terms, not codes: the image routes write these
# meanings for them, the same text an RDSR carries.
NO_FILTER = DCM("111609", "No Filter")
STRIP_FILTER = DCM("113650", "Strip filter")
WEDGE_FILTER = DCM("113651", "Wedge filter")
BUTTERFLY_FILTER = DCM("113652", "Butterfly filter")
FLAT_FILTER = DCM("113653", "Flat filter")
MOLYBDENUM = SRT("C-150F9", "Molybdenum or Molybdenum compound")
RHODIUM = SRT("C-167F9", "Rhodium or Rhodium compound")
SILVER = SRT("C-137F9", "Silver or Silver compound")
ALUMINUM = SRT("C-120F9", "Aluminum or Aluminum compound")
COPPER = SRT("C-127F9", "Copper or Copper compound")
NIOBIUM = SRT("C-1190E", "Niobium or Niobium compound")
EUROPIUM = SRT("C-1190F", "Europium or Europium compound")
LEAD = SRT("C-132F9", "Lead or Lead compound")
TANTALUM = SRT("C-156F9", "Tantalum or Tantalum compound")
TUNGSTEN = SRT("C-164F9", "Tungsten or Tungsten compound")

# Mechanical (TID 10003c) and distances (CID 10008)
POSITIONER_PRIMARY_ANGLE = DCM("112011", "Positioner Primary Angle")
POSITIONER_SECONDARY_ANGLE = DCM("112012", "Positioner Secondary Angle")
COMPRESSION_THICKNESS = DCM("111633", "Compression Thickness")
COMPRESSION_FORCE = DCM("111647", "Compression Force")
SOURCE_TO_DETECTOR = DCM("113750", "Distance Source to Detector")
SOURCE_TO_ISOCENTER = DCM("113748", "Distance Source to Isocenter")
TABLE_LONGITUDINAL = DCM("113751", "Table Longitudinal Position")
TABLE_LATERAL = DCM("113752", "Table Lateral Position")
TABLE_HEIGHT = DCM("113753", "Table Height Position")

# Detector (TID 10003a)
EXPOSURE_INDEX = DCM("113845", "Exposure Index")
TARGET_EXPOSURE_INDEX = DCM("113846", "Target Exposure Index")
DEVIATION_INDEX = DCM("113847", "Deviation Index")

# Laterality and breast values (CID 244 Laterality, CID 6022 breast sites), every spelling met:
# SNOMED CT first, then SNOMED RT and UMLS.
LEFT = SCT("7771000", "Left", also=[SRT("G-A101")])
RIGHT = SCT("24028007", "Right", also=[SRT("G-A100")])
RIGHT_AND_LEFT = SCT("51440002", "Right and left", also=[SRT("G-A102")])
LEFT_BREAST = SCT("80248007", "Left breast", also=[SRT("T-04030"), Code("UMLS", "C0222601")])
RIGHT_BREAST = SCT("73056007", "Right breast", also=[SRT("T-04020"), Code("UMLS", "C0222600")])
BOTH_BREASTS = SCT("63762007", "Both breasts", also=[SRT("T-04080"), Code("UMLS", "C0222605")])

# --- CT (TID 10011 CT Radiation Dose) -----------------------------------------------------------
# TID 10012 CT Accumulated Dose Data
CT_ACCUMULATED = DCM("113811", "CT Accumulated Dose Data")
TOTAL_EVENTS = DCM("113812", "Total Number of Irradiation Events")
DLP_TOTAL = DCM("113813", "CT Dose Length Product Total")
EFFECTIVE_DOSE_TOTAL = DCM("113814", "CT Effective Dose Total")
# TID 10013 CT Irradiation Event Data
CT_ACQUISITION = DCM("113819", "CT Acquisition")
CT_ACQUISITION_TYPE = DCM("113820", "CT Acquisition Type")
XRAY_MODULATION_TYPE = DCM("113842", "X-Ray Modulation Type")
CT_ACQUISITION_PARAMETERS = DCM("113822", "CT Acquisition Parameters")
SCANNING_LENGTH = DCM("113825", "Scanning Length")
SINGLE_COLLIMATION = DCM("113826", "Nominal Single Collimation Width")
TOTAL_COLLIMATION = DCM("113827", "Nominal Total Collimation Width")
PITCH_FACTOR = DCM("113828", "Pitch Factor")
NUMBER_OF_SOURCES = DCM("113823", "Number of X-Ray Sources")
# CT X-Ray Source Parameters
CT_SOURCE_PARAMETERS = DCM("113831", "CT X-Ray Source Parameters")
SOURCE_ID = DCM("113832", "Identification of the X-Ray Source")
MAX_TUBE_CURRENT = DCM("113833", "Maximum X-Ray Tube Current")
EXPOSURE_TIME_PER_ROTATION = DCM("113834", "Exposure Time per Rotation")
# CT Dose
CT_DOSE = DCM("113829", "CT Dose")
MEAN_CTDIVOL = DCM("113830", "Mean CTDIvol")
CTDIW_PHANTOM_TYPE = DCM("113835", "CTDIw Phantom Type")
DLP = DCM("113838", "DLP")
EFFECTIVE_DOSE = DCM("113839", "Effective Dose")
# Size-specific dose (CP-1525)
SSDE = DCM("113930", "Size Specific Dose Estimate")
WATER_EQUIVALENT_DIAMETER = DCM("113980", "Water Equivalent Diameter")

# CTDIw Phantom Type values (CID 4052), and the names doseflow's reports give them
# (`CtEvent.ctdiw_phantom`).
IEC_HEAD_DOSIMETRY_PHANTOM = DCM("113690", "IEC Head Dosimetry Phantom")
IEC_BODY_DOSIMETRY_PHANTOM = DCM("113691", "IEC Body Dosimetry Phantom")
CTDIW_PHANTOMS = {"head16": IEC_HEAD_DOSIMETRY_PHANTOM, "body32": IEC_BODY_DOSIMETRY_PHANTOM}

# CT Acquisition Type values (CID 10013)
SEQUENCED_ACQUISITION = DCM("113804", "Sequenced Acquisition")
SPIRAL_ACQUISITION = SCT("116152004", "Spiral Acquisition")
CONSTANT_ANGLE_ACQUISITION = DCM("113805", "Constant Angle Acquisition")
STATIONARY_ACQUISITION = DCM("113806", "Stationary Acquisition")
FREE_ACQUISITION = DCM("113807", "Free Acquisition")
CONE_BEAM_ACQUISITION = SCT("702569007", "Cone Beam Acquisition")
CT_ACQUISITION_TYPES = (SEQUENCED_ACQUISITION, SPIRAL_ACQUISITION, CONSTANT_ANGLE_ACQUISITION,
                        STATIONARY_ACQUISITION, FREE_ACQUISITION, CONE_BEAM_ACQUISITION)

# The target regions CT reports commonly name, from CID 4031 Common Anatomic Region (which CID
# 4030, the Target Region's context group, includes) and CID 4030 itself. Current SCT codes.
CT_TARGET_REGIONS = (
    SCT("818981001", "Abdomen"),
    SCT("818982008", "Abdomen and Pelvis"),
    SCT("12738006", "Brain"),
    SCT("122494005", "Cervical spine"),
    SCT("816094009", "Chest"),
    SCT("416550000", "Chest and Abdomen"),
    SCT("416775004", "Chest, Abdomen and Pelvis"),
    SCT("41801008", "Coronary artery"),
    SCT("38266002", "Entire body"),
    SCT("91397008", "Facial bones"),
    SCT("56459004", "Foot"),
    SCT("69536005", "Head"),
    SCT("774007", "Head and Neck"),
    SCT("80891009", "Heart"),
    SCT("24136001", "Hip Joint"),
    SCT("361078006", "Internal Auditory Canal"),
    SCT("64033007", "Kidney"),
    SCT("72696002", "Knee"),
    SCT("10200004", "Liver"),
    SCT("61685007", "Lower limb"),
    SCT("122496007", "Lumbar spine"),
    SCT("45048000", "Neck"),
    SCT("417437006", "Neck and Chest"),
    SCT("416152001", "Neck, Chest and Abdomen"),
    SCT("416319003", "Neck, Chest, Abdomen and Pelvis"),
    SCT("363654007", "Orbital structure"),
    SCT("15776009", "Pancreas"),
    SCT("2095001", "Paranasal sinus"),
    SCT("816092008", "Pelvis"),
    SCT("706342009", "Phantom"),
    SCT("81040000", "Pulmonary artery"),
    SCT("89546000", "Skull"),
    SCT("421060004", "Spine"),
    SCT("113262008", "Thoracic aorta"),
    SCT("122495006", "Thoracic spine"),
    SCT("53120007", "Upper limb"),
)

# TID 10015 CT Dose Check Details
DOSE_CHECK_ALERT = DCM("113900", "Dose Check Alert Details")
DLP_ALERT_CONFIGURED = DCM("113901", "DLP Alert Value Configured")
CTDIVOL_ALERT_CONFIGURED = DCM("113902", "CTDIvol Alert Value Configured")
DLP_ALERT_VALUE = DCM("113903", "DLP Alert Value")
CTDIVOL_ALERT_VALUE = DCM("113904", "CTDIvol Alert Value")
ACCUMULATED_DLP_FORWARD_ESTIMATE = DCM("113905", "Accumulated DLP Forward Estimate")
ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE = DCM("113906", "Accumulated CTDIvol Forward Estimate")
REASON_FOR_PROCEEDING = DCM("113907", "Reason for Proceeding")
DOSE_CHECK_NOTIFICATION = DCM("113908", "Dose Check Notification Details")
DLP_NOTIFICATION_CONFIGURED = DCM("113909", "DLP Notification Value Configured")
CTDIVOL_NOTIFICATION_CONFIGURED = DCM("113910", "CTDIvol Notification Value Configured")
DLP_NOTIFICATION_VALUE = DCM("113911", "DLP Notification Value")
CTDIVOL_NOTIFICATION_VALUE = DCM("113912", "CTDIvol Notification Value")
DLP_FORWARD_ESTIMATE = DCM("113913", "DLP Forward Estimate")
CTDIVOL_FORWARD_ESTIMATE = DCM("113914", "CTDIvol Forward Estimate")
PERSON_NAME = DCM("113870", "Person Name")

# Yes / No (CID 230)
YES = SCT("373066001", "Yes", also=[SRT("R-0038D")])
NO = SCT("373067005", "No", also=[SRT("R-00339")])

# --- units (UCUM), as the RDSR writer labels its numbers ------------------------------------------
MGY = UCUM("mGy", "mGy")
MGY_CM = UCUM("mGy.cm", "mGy.cm")
MSV = UCUM("mSv", "mSv")
MM = UCUM("mm", "mm")
SECONDS = UCUM("s", "s")
KV = UCUM("kV", "kV")
MA = UCUM("mA", "mA")
RATIO = UCUM("{ratio}", "ratio")
EVENTS = UCUM("{events}", "events")
XRAY_SOURCES = UCUM("{X-Ray sources}", "X-Ray sources")

# --- vendors' private schemes -------------------------------------------------------------------
# Siemens Arcadis Varic radiation summary (root SIEMENS_RADIATION_SUMMARY above).
VARIC_TOTAL_EXPOSURES = Code(SIEMENS_RADSUM, "C-200", "Total number of exposures")
VARIC_CUMULATIVE_FLUORO_TIME = Code(SIEMENS_RADSUM, "C-202", "Cumulative fluoro time")
VARIC_CUMULATIVE_DAP = Code(SIEMENS_RADSUM, "C-204", "Cumulative dose area product")

# Philips Allura Xper private items of its RDSR events (scheme 99PHI-IXR-XPER, spec §3).
PHILIPS_XPER = "99PHI-IXR-XPER"
PHILIPS_NUMBER_OF_FRAMES = Code(PHILIPS_XPER, "003", "Philips Number of Frames")
PHILIPS_WEDGES_AND_SHUTTERS = Code(PHILIPS_XPER, "005", "Philips Wedges and Shutters")
PHILIPS_BOTTOM_SHUTTER = Code(PHILIPS_XPER, "006", "Philips Bottom Shutter")
PHILIPS_LEFT_SHUTTER = Code(PHILIPS_XPER, "007", "Philips Left Shutter")
PHILIPS_RIGHT_SHUTTER = Code(PHILIPS_XPER, "008", "Philips Right Shutter")
PHILIPS_TOP_SHUTTER = Code(PHILIPS_XPER, "009", "Philips Top Shutter")
PHILIPS_FINAL_SOURCE_TO_DETECTOR = Code(PHILIPS_XPER, "018", "Philips Final Distance Source to Detector")
PHILIPS_TABLE_HEIGHT = Code(PHILIPS_XPER, "021", "Philips Table Height Position")
PHILIPS_DETECTOR_FIELD_SIZE = Code(PHILIPS_XPER, "023", "Philips Detector Field Size")
PHILIPS_DETECTOR_X_SIDE = Code(PHILIPS_XPER, "024", "Philips Detector Field Size X side")
PHILIPS_DETECTOR_Y_SIDE = Code(PHILIPS_XPER, "025", "Philips Detector Field Size Y side")

# doseflow's own scheme, for a meaning the writer must code that has no standard code.
DOSEFLOW_PRIVATE_SCHEME = "99DOSEFLOW"
