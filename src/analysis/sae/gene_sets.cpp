// The arbitrary token sets of SAELens's analysis/tsea.py get_test_gene_sets, re-typed as data in its
// order (the economics and neuroscience terms lower-cased as it does; duplicates kept, sets dedupe).
#include "analysis/sae/token_sets.h"

namespace mechscope::analysis::sae {

namespace {

std::vector<std::string> years(int from) {
  std::vector<std::string> v;
  for (int y = from; y < from + 10; ++y) v.push_back(std::to_string(y));
  return v;
}

std::vector<std::string> lower(std::vector<std::string> v) {
  for (auto& s : v)
    for (auto& c : s) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  return v;
}

}  // namespace

const std::vector<std::pair<std::string, std::vector<std::string>>>& test_gene_words() {
  static const std::vector<std::string> colors = {"red",  "blue",  "yellow",   "green",  "orange", "purple",
                                                  "pink", "teal",  "lavender", "maroon", "olive",  "navy",
                                                  "grey", "black", "white",    "brown"};
  static const std::vector<std::string> negative = {
      "terrible",    "awful",      "horrible",   "dreadful",   "abysmal",    "wretched",    "dire",
      "appalling",   "horrific",   "disastrous", "ghastly",    "hideous",    "gruesome",    "vile",
      "foul",        "atrocious",  "heinous",    "abhorrent",  "detestable", "loathsome",   "repulsive",
      "repugnant",   "disgusting", "revolting",  "noxious",    "offensive",  "nauseating",  "sickening",
      "distasteful", "unpleasant", "obnoxious",  "odious",     "unsavory",   "unpalatable", "grim",
      "gloomy",      "deplorable", "depressing", "despicable", "miserable",  "pathetic",    "pitiful",
      "lamentable",  "direful",    "tragic",     "woeful",     "painful",    "harsh",       "bitter"};
  static const std::vector<std::string> positive = {
      "wonderful",   "amazing",      "fabulous",   "excellent", "fantastic",    "brilliant",   "awesome",
      "spectacular", "marvelous",    "incredible", "superb",    "magical",      "delightful",  "charming",
      "beautiful",   "astonishing",  "impressive", "stunning",  "breathtaking", "admirable",   "lovely",
      "pleasing",    "enchanting",   "exquisite",  "radiant",   "splendid",     "glorious",    "divine",
      "sublime",     "heavenly",     "idyllic",    "blissful",  "serene",       "tranquil",    "peaceful",
      "joyful",      "ecstatic",     "jubilant",   "elated",    "uplifting",    "inspiring",   "revitalizing",
      "refreshing",  "invigorating", "energizing", "thrilling", "captivating",  "enthralling", "enlightening"};
  static const std::vector<std::string> emotions = {
      "anger", "fear", "joy",        "sadness", "trust", "disgust", "anticipation", "surprise", "love",
      "hate",  "envy", "compassion", "pride",   "shame", "guilt",   "hope",         "despair"};
  static const std::vector<std::string> boys = {"Michael", "James",  "John",    "Robert", "David",
                                                "William", "Joseph", "Charles", "Thomas", "Christopher"};
  static const std::vector<std::string> girls = {"Mary",    "Patricia", "Jennifer", "Linda", "Elizabeth",
                                                 "Barbara", "Susan",    "Jessica",  "Sarah", "Karen"};
  static const std::vector<std::string> capitals = {
      "Washington, D.C.", "Ottawa", "London", "Paris", "Berlin", "Tokyo", "Moscow", "Beijing", "Canberra", "New Delhi"};
  static const std::vector<std::string> countries = {"United States", "Canada", "United Kingdom", "France",
                                                     "Germany",       "Japan",  "Russia",         "China",
                                                     "Australia",     "India"};
  static const std::vector<std::string> neuro = lower({"Neuron",
                                                       "Synapse",
                                                       "Axon",
                                                       "Dendrite",
                                                       "Neuroplasticity",
                                                       "Cerebral cortex",
                                                       "Neurotransmitter",
                                                       "Myelin sheath",
                                                       "Action potential",
                                                       "Grey matter",
                                                       "White matter",
                                                       "Neurogenesis",
                                                       "Neurotransmission",
                                                       "Neurodegeneration",
                                                       "Neuroinflammation",
                                                       "Neurodevelopment",
                                                       "Neuroimaging",
                                                       "Neuropharmacology",
                                                       "Neurophysiology",
                                                       "Neuropsychology"});
  static const std::vector<std::string> econ = lower({"Supply and Demand",
                                                      "Elasticity",
                                                      "Gross Domestic Product (GDP)",
                                                      "Inflation",
                                                      "Monetary policy",
                                                      "Fiscal policy",
                                                      "Marginal utility",
                                                      "Opportunity cost",
                                                      "Equilibrium price",
                                                      "Market efficiency",
                                                      "Monopoly",
                                                      "Oligopoly",
                                                      "Monopolistic competition",
                                                      "Perfect competition",
                                                      "Economic surplus",
                                                      "Consumer surplus",
                                                      "Producer surplus",
                                                      "Deadweight loss",
                                                      "Economic rent",
                                                      "Externality"});
  static const std::vector<std::string> spanish = {"hola",    "amor",  "feliz",  "casa",  "familia",
                                                   "gracias", "libro", "mañana", "noche", "amigo"};
  static const std::vector<std::string> french = {"bonjour", "amour", "heureux", "maison", "famille",
                                                  "merci",   "livre", "matin",   "nuit",   "ami"};
  static const std::vector<std::string> jewish = {
      "Bloom", "Levine", "Goldstein", "Cohen", "Katz",  "Kaplan", "Adler",    "Stein",  "Weiss",    "Stern",
      "Cohen", "Levi",   "Katz",      "Kahan", "Weiss", "Gross",  "Friedman", "Kramer", "Grossman", "Zimmerman"};
  static const std::vector<std::string> ologies = {
      "Biology",   "Ecology",      "Psychology", "Sociology",   "Geology",    "Meteorology",  "Zoology",
      "Botany",    "Anthropology", "Astrology",  "Astronomy",   "Theology",   "Philology",    "Pharmacology",
      "Pathology", "Oceanology",   "Toxicology", "Volcanology", "Entomology", "Paleontology", "Neurology",
      "Ethnology", "Criminology",  "Seismology", "Cytology"};
  static const std::vector<std::pair<std::string, std::vector<std::string>>> sets = {
      {"1910's", years(1910)},      {"1920's", years(1920)},       {"1930's", years(1930)},
      {"1940's", years(1940)},      {"1950's", years(1950)},       {"1960's", years(1960)},
      {"1970's", years(1970)},      {"1980's", years(1980)},       {"1990's", years(1990)},
      {"2000's", years(2000)},      {"2010's", years(2010)},       {"colors", colors},
      {"positive_words", positive}, {"negative_words", negative},  {"emotions", emotions},
      {"boys_names", boys},         {"girls_names", girls},        {"spanish_words", spanish},
      {"french_words", french},     {"neuroscience_terms", neuro}, {"economics_terms", econ},
      {"capital_cities", capitals}, {"countries", countries},      {"jewish_last_names", jewish},
      {"ologies", ologies}};
  return sets;
}

}  // namespace mechscope::analysis::sae
