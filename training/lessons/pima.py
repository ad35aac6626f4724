"""The Pima data's input columns, torch-free: the registry lists them (and the served model's form
validates against them) without importing the lesson, which needs torch."""

FEATURES = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]
FEATURE_HELP = {"npreg": "number of pregnancies", "glu": "plasma glucose (mg/dl, 2 h OGTT)",
                "bp": "diastolic blood pressure (mm Hg)", "skin": "triceps skin fold (mm)",
                "bmi": "body mass index (kg/m²)", "ped": "diabetes pedigree function", "age": "age (years)"}
# what the form accepts: physiologically plausible, wider than the data so real patients fit
FEATURE_RANGES = {"npreg": (0, 20), "glu": (40, 250), "bp": (20, 140), "skin": (5, 100), "bmi": (10, 80),
                  "ped": (0.05, 3.0), "age": (18, 100)}
