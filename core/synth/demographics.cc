#include "synth/demographics.h"

namespace fhirbulk {
namespace synth {

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

const Town kTowns[] = {
    {"Boston", "02108", 42.3601, -71.0589, 675},
    {"Worcester", "01608", 42.2626, -71.8023, 206},
    {"Springfield", "01103", 42.1015, -72.5898, 155},
    {"Cambridge", "02139", 42.3736, -71.1097, 118},
    {"Lowell", "01852", 42.6334, -71.3162, 115},
    {"Brockton", "02301", 42.0834, -71.0184, 105},
    {"New Bedford", "02740", 41.6362, -70.9342, 101},
    {"Quincy", "02169", 42.2529, -71.0023, 101},
    {"Lynn", "01901", 42.4668, -70.9495, 101},
    {"Fall River", "02720", 41.7015, -71.1550, 94},
    {"Newton", "02458", 42.3370, -71.2092, 88},
    {"Lawrence", "01840", 42.7070, -71.1631, 89},
    {"Somerville", "02143", 42.3876, -71.0995, 81},
    {"Framingham", "01702", 42.2793, -71.4162, 72},
    {"Haverhill", "01830", 42.7762, -71.0773, 67},
    {"Waltham", "02451", 42.3765, -71.2356, 65},
    {"Malden", "02148", 42.4251, -71.0662, 66},
    {"Brookline", "02445", 42.3318, -71.1212, 63},
    {"Plymouth", "02360", 41.9584, -70.6673, 61},
    {"Medford", "02155", 42.4184, -71.1062, 59},
    {"Taunton", "02780", 41.9001, -71.0898, 59},
    {"Chicopee", "01013", 42.1487, -72.6079, 55},
    {"Weymouth", "02188", 42.2180, -70.9410, 57},
    {"Revere", "02151", 42.4084, -71.0120, 62},
    {"Peabody", "01960", 42.5279, -70.9287, 54},
    {"Methuen", "01844", 42.7262, -71.1909, 53},
    {"Barnstable", "02601", 41.7003, -70.3002, 48},
    {"Pittsfield", "01201", 42.4501, -73.2454, 43},
    {"Attleboro", "02703", 41.9445, -71.2856, 46},
    {"Arlington", "02474", 42.4154, -71.1565, 46},
    {"Everett", "02149", 42.4084, -71.0537, 49},
    {"Salem", "01970", 42.5195, -70.8967, 44},
    {"Westfield", "01085", 42.1251, -72.7495, 41},
    {"Leominster", "01453", 42.5251, -71.7598, 43},
    {"Fitchburg", "01420", 42.5834, -71.8023, 41},
    {"Beverly", "01915", 42.5584, -70.8800, 42},
    {"Holyoke", "01040", 42.2043, -72.6162, 40},
    {"Marlborough", "01752", 42.3459, -71.5523, 41},
    {"Woburn", "01801", 42.4793, -71.1523, 40},
    {"Chelsea", "02150", 42.3918, -71.0328, 40},
    {"Braintree", "02184", 42.2079, -71.0040, 39},
    {"Shrewsbury", "01545", 42.2959, -71.7129, 38},
    {"Dartmouth", "02747", 41.6126, -70.9720, 34},
    {"Chelmsford", "01824", 42.5998, -71.3673, 36},
    {"Andover", "01810", 42.6583, -71.1368, 36},
    {"Natick", "01760", 42.2834, -71.3495, 36},
    {"Randolph", "02368", 42.1626, -71.0412, 34},
    {"Watertown", "02472", 42.3709, -71.1828, 35},
    {"Franklin", "02038", 42.0834, -71.3967, 33},
    {"Lexington", "02420", 42.4430, -71.2290, 34},
    {"Northampton", "01060", 42.3251, -72.6412, 29},
    {"Amherst", "01002", 42.3732, -72.5199, 40},
    {"Easthampton", "01027", 42.2668, -72.6690, 16},
    {"Gloucester", "01930", 42.6159, -70.6620, 30},
    {"Marshfield", "02050", 42.0918, -70.7056, 25},
    {"Falmouth", "02540", 41.5515, -70.6148, 31},
    {"Norwood", "02062", 42.1945, -71.1995, 31},
    {"Milton", "02186", 42.2495, -71.0662, 28},
    {"Wellesley", "02481", 42.2968, -71.2924, 29},
    {"Needham", "02492", 42.2809, -71.2356, 31},
    {"Dedham", "02026", 42.2418, -71.1662, 25},
    {"Hingham", "02043", 42.2418, -70.8898, 24},
    {"Agawam", "01001", 42.0695, -72.6148, 28},
    {"Greenfield", "01301", 42.5876, -72.5995, 17},
    {"Nantucket", "02554", 41.2835, -70.0995, 14},
};
const size_t kTownCount = COUNT_OF(kTowns);

const Town& TownAt(double u) {
  double total = 0;
  for (const Town& t : kTowns) total += t.weight;
  double x = u * total;
  for (const Town& t : kTowns) {
    if (x < t.weight) return t;
    x -= t.weight;
  }
  return kTowns[kTownCount - 1];
}

const char* const kMaleGivenNames[] = {
    "James",     "John",    "Robert",      "Michael",   "William", "David",   "Richard", "Joseph",
    "Thomas",    "Charles", "Christopher", "Daniel",    "Matthew", "Anthony", "Mark",    "Donald",
    "Steven",    "Paul",    "Andrew",      "Joshua",    "Kenneth", "Kevin",   "Brian",   "George",
    "Timothy",   "Ronald",  "Edward",      "Jason",     "Jeffrey", "Ryan",    "Jacob",   "Gary",
    "Nicholas",  "Eric",    "Jonathan",    "Stephen",   "Larry",   "Justin",  "Scott",   "Brandon",
    "Benjamin",  "Samuel",  "Gregory",     "Alexander", "Frank",   "Patrick", "Raymond", "Jack",
    "Dennis",    "Jerry",   "Tyler",       "Aaron",     "José",    "Adam",    "Nathan",  "Henry",
    "Douglas",   "Zachary", "Peter",       "Kyle",      "Ethan",   "Walter",  "Noah",    "Jeremy",
    "Christian", "Keith",   "Roger",       "Terry",     "Gerald",  "Harold",  "Sean",    "Austin",
    "Carl",      "Arthur",  "Lawrence",    "Dylan",     "Jesse",   "Jordan",  "Bryan",   "Billy",
    "Bruce",     "Gabriel", "Logan",       "Albert",    "Alan",    "Juan",    "Wayne",   "Elijah",
    "Randy",     "Roy",     "Vincent",     "Ralph",     "Eugene",  "Russell", "Bobby",   "Mason",
    "Philip",    "Louis",   "Carlos",      "Luis",      "Miguel",  "Ramón",   "Andrés",  "Wei",
    "Minh",      "Hiroshi", "Rahul",       "Kwame",     "Liam",    "Declan",  "Mateo",   "Santiago",
};
const size_t kMaleGivenNameCount = COUNT_OF(kMaleGivenNames);

const char* const kFemaleGivenNames[] = {
    "Mary",      "Patricia", "Jennifer",  "Linda",     "Elizabeth",  "Barbara",   "Susan",
    "Jessica",   "Sarah",    "Karen",     "Lisa",      "Nancy",      "Betty",     "Margaret",
    "Sandra",    "Ashley",   "Kimberly",  "Emily",     "Donna",      "Michelle",  "Carol",
    "Amanda",    "Dorothy",  "Melissa",   "Deborah",   "Stephanie",  "Rebecca",   "Sharon",
    "Laura",     "Cynthia",  "Kathleen",  "Amy",       "Angela",     "Shirley",   "Anna",
    "Brenda",    "Pamela",   "Emma",      "Nicole",    "Helen",      "Samantha",  "Katherine",
    "Christine", "Debra",    "Rachel",    "Carolyn",   "Janet",      "Catherine", "Maria",
    "Heather",   "Diane",    "Ruth",      "Julie",     "Olivia",     "Joyce",     "Virginia",
    "Victoria",  "Kelly",    "Lauren",    "Christina", "Joan",       "Evelyn",    "Judith",
    "Megan",     "Andrea",   "Cheryl",    "Hannah",    "Jacqueline", "Martha",    "Gloria",
    "Teresa",    "Ann",      "Sara",      "Madison",   "Frances",    "Kathryn",   "Janice",
    "Jean",      "Abigail",  "Alice",     "Judy",      "Sophia",     "Grace",     "Denise",
    "Amber",     "Doris",    "Marilyn",   "Danielle",  "Beverly",    "Isabella",  "Theresa",
    "Diana",     "Natalie",  "Brittany",  "Charlotte", "Marie",      "Kayla",     "Alexis",
    "Lori",      "Sofía",    "Lucía",     "Mei",       "Linh",       "Yuki",      "Priya",
    "Ama",       "Siobhan",  "Valentina", "Camila",    "Aaliyah",    "Zoe",       "Chloe",
};
const size_t kFemaleGivenNameCount = COUNT_OF(kFemaleGivenNames);

const char* const kFamilyNames[] = {
    "Smith",     "Johnson",   "Williams",   "Brown",      "Jones",     "Garcia",    "Miller",
    "Davis",     "Rodriguez", "Martinez",   "Hernandez",  "Lopez",     "Gonzalez",  "Wilson",
    "Anderson",  "Thomas",    "Taylor",     "Moore",      "Jackson",   "Martin",    "Lee",
    "Perez",     "Thompson",  "White",      "Harris",     "Sanchez",   "Clark",     "Ramirez",
    "Lewis",     "Robinson",  "Walker",     "Young",      "Allen",     "King",      "Wright",
    "Scott",     "Torres",    "Nguyen",     "Hill",       "Flores",    "Green",     "Adams",
    "Nelson",    "Baker",     "Hall",       "Rivera",     "Campbell",  "Mitchell",  "Carter",
    "Roberts",   "Gomez",     "Phillips",   "Evans",      "Turner",    "Diaz",      "Parker",
    "Cruz",      "Edwards",   "Collins",    "Reyes",      "Stewart",   "Morris",    "Morales",
    "Murphy",    "Cook",      "Rogers",     "Gutierrez",  "Ortiz",     "Morgan",    "Cooper",
    "Peterson",  "Bailey",    "Reed",       "Kelly",      "Howard",    "Ramos",     "Kim",
    "Cox",       "Ward",      "Richardson", "Watson",     "Brooks",    "Chavez",    "Wood",
    "James",     "Bennett",   "Gray",       "Mendoza",    "Ruiz",      "Hughes",    "Price",
    "Alvarez",   "Castillo",  "Sanders",    "Patel",      "Myers",     "Long",      "Ross",
    "Foster",    "Jimenez",   "Powell",     "Jenkins",    "Perry",     "Russell",   "Sullivan",
    "Bell",      "Coleman",   "Butler",     "Henderson",  "Barnes",    "Fisher",    "Vasquez",
    "Simmons",   "Romero",    "Jordan",     "Patterson",  "Alexander", "Hamilton",  "Graham",
    "Reynolds",  "Griffin",   "Wallace",    "Moreno",     "West",      "Cole",      "Hayes",
    "Bryant",    "Herrera",   "Gibson",     "Ellis",      "Tran",      "Medina",    "Aguilar",
    "Stevens",   "Murray",    "Ford",       "Castro",     "Marshall",  "Owens",     "Harrison",
    "Fernandez", "McDonald",  "Woods",      "Washington", "Kennedy",   "Wells",     "Vargas",
    "Henry",     "Chen",      "Freeman",    "Webb",       "Tucker",    "Guzman",    "Burns",
    "Crawford",  "Olson",     "Simpson",    "Porter",     "Hunter",    "Gordon",    "Mendez",
    "Silva",     "Shaw",      "Snyder",     "Mason",      "Dixon",     "Muñoz",     "Hunt",
    "Hicks",     "Holmes",    "Palmer",     "Wagner",     "Black",     "Robertson", "Boyd",
    "Rose",      "Stone",     "Salazar",    "Fox",        "Warren",    "Mills",     "Meyer",
    "Rice",      "Schmidt",   "Garza",      "Daniels",    "Ferguson",  "Nichols",   "Stephens",
    "Soto",      "Weaver",    "Ryan",       "Gardner",    "Payne",     "Grant",     "Dunn",
    "Kelley",    "Spencer",   "Hawkins",    "Arnold",     "Pierce",    "Vázquez",   "Hansen",
    "Peters",    "Santos",    "Hart",       "Bradley",    "Knight",    "Elliott",   "Cunningham",
    "Duncan",    "Armstrong", "Hudson",     "Carroll",    "Lane",      "Riley",     "Andrews",
    "Alvarado",  "Ray",       "Delgado",    "Berry",      "Perkins",   "Hoffman",   "Johnston",
    "Matthews",  "Peña",      "Richards",   "Willis",     "Carpenter", "Lawrence",  "Sandoval",
    "O'Brien",   "O'Connor",  "Fitzgerald", "Doherty",    "Kowalski",  "Nowak",     "Rossi",
    "Russo",     "Costa",     "Pereira",    "Oliveira",   "Wong",      "Huang",     "Liu",
    "Pham",      "Le",        "Shah",       "Singh",      "Mensah",    "Okafor",    "Haddad",
};
const size_t kFamilyNameCount = COUNT_OF(kFamilyNames);

const char* const kStreetNames[] = {
    "Main",   "Oak",     "Pine",     "Maple",    "Cedar",    "Elm",     "Washington", "Lake",
    "Hill",   "Park",    "Walnut",   "Spring",   "North",    "Ridge",   "Church",     "Willow",
    "Mill",   "Sunset",  "Highland", "Jackson",  "Cherry",   "River",   "Chestnut",   "Prospect",
    "School", "Union",   "Center",   "Franklin", "Pleasant", "Summer",  "Winter",     "Spruce",
    "Forest", "Meadow",  "Birch",    "Harbor",   "Beacon",   "Broad",   "Water",      "Green",
    "Bridge", "Academy", "Adams",    "Bay",      "Brook",    "Central", "Common",     "Cottage",
    "Dexter", "Elmwood", "Fairview", "Grove",    "Hancock",  "Harvard", "Liberty",    "Lincoln",
    "Locust", "Madison", "Mystic",   "Orchard",  "Plymouth", "Pond",    "Putnam",     "Quincy",
    "Revere", "Salem",   "Sherman",  "Tremont",  "Vernon",   "Warren",  "Webster",    "Wood",
    "Yale",   "Ash",     "Bartlett", "Colonial", "Depot",
};
const size_t kStreetNameCount = COUNT_OF(kStreetNames);

const char* const kStreetSuffixes[] = {
    "Street",  "Avenue", "Road",    "Lane",      "Way",  "Drive",   "Court",    "Place",
    "Terrace", "Circle", "Parkway", "Boulevard", "Gate", "Heights", "Crossing", "Square",
};
const size_t kStreetSuffixCount = COUNT_OF(kStreetSuffixes);

const BirthPlace kDistantBirthPlaces[] = {
    {"Providence", "Rhode Island", "US"},
    {"New York", "New York", "US"},
    {"Hartford", "Connecticut", "US"},
    {"Portland", "Maine", "US"},
    {"San Juan", "Puerto Rico", "US"},
    {"Santo Domingo", "National District", "DO"},
    {"Port-au-Prince", "Ouest", "HT"},
    {"Shanghai", "Shanghai Municipality", "CN"},
    {"Ho Chi Minh City", "Ho Chi Minh", "VN"},
    {"Lisbon", "Lisbon", "PT"},
    {"Praia", "Santiago", "CV"},
    {"Mumbai", "Maharashtra", "IN"},
    {"Kingston", "Kingston", "JM"},
    {"Dublin", "Leinster", "IE"},
    {"Guatemala City", "Guatemala", "GT"},
    {"São Paulo", "São Paulo", "BR"},
};
const size_t kDistantBirthPlaceCount = COUNT_OF(kDistantBirthPlaces);

const Language kEnglish = {"en-US", "English"};
const Language kOtherLanguages[] = {
    {"es", "Spanish"}, {"pt", "Portuguese"}, {"zh", "Chinese"}, {"vi", "Vietnamese"},
    {"ht", "Haitian"}, {"fr-FR", "French"},  {"ru", "Russian"}, {"ar", "Arabic"},
    {"km", "Khmer"},   {"hi", "Hindi"},
};
const size_t kOtherLanguageCount = COUNT_OF(kOtherLanguages);

const OmbCategory kRaces[] = {
    {"2106-3", "White", 0.76},
    {"2054-5", "Black or African American", 0.09},
    {"2028-9", "Asian", 0.07},
    {"1002-5", "American Indian or Alaska Native", 0.005},
    {"2076-8", "Native Hawaiian or Other Pacific Islander", 0.002},
    {"2131-1", "Other Race", 0.063},
};
const size_t kRaceCount = COUNT_OF(kRaces);
const OmbCategory kHispanic = {"2135-2", "Hispanic or Latino", 0.12};
const OmbCategory kNotHispanic = {"2186-5", "Not Hispanic or Latino", 0.88};

const char* const kClinicSuffixes[] = {
    "Family Practice", "Primary Care",      "Health Center",           "Medical Group",
    "Pediatrics",      "Internal Medicine", "Community Health Center", "Urgent Care",
};
const size_t kClinicSuffixCount = COUNT_OF(kClinicSuffixes);
const char* const kHospitalSuffixes[] = {
    "General Hospital",
    "Medical Center",
    "Regional Hospital",
    "Community Hospital",
};
const size_t kHospitalSuffixCount = COUNT_OF(kHospitalSuffixes);

#undef COUNT_OF

}  // namespace synth
}  // namespace fhirbulk
