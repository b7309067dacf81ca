#!/usr/bin/env python3
"""Generate the small multilingual NER demo data set in ``data/demo/``.

The sentences are synthetic: they are produced from hand-written templates
and gazetteers below (written for this project), for five languages
(en, de, fr, es, nl) and the entity types PER, LOC and ORG.

Output, in the XtremeDistil format (one sentence a line,
``tokens<TAB>tags``, tags IOB2 and prefixed by the language id)::

    data/demo/train.tsv     ~100 sentences per language
    data/demo/dev.tsv        ~40 sentences per language
    data/demo/test.tsv       ~60 sentences per language
    data/demo/labels.tsv     the label set, one a line
    data/demo/transfer.txt  ~600 unlabeled sentences per language, shuffled

About 30% of the gazetteer entries are *held out*: they never fill a slot in
train.tsv, but they do fill slots in dev/test (about a third of the entity
slots there) and in the unlabeled transfer set.  A model therefore has to
generalise from context, and a distilled student can profit from the
unlabeled transfer data.

Standard library only and fully deterministic:
``python data/make_demo.py`` regenerates byte-identical files.
"""

import hashlib
import os
import random
import sys
from collections import Counter

SEED = 20240917
LANGS = ["en", "de", "fr", "es", "nl"]
SPLIT_SIZES = {"train": 100, "dev": 40, "test": 60}  # sentences per language
TRANSFER_PER_LANG = 600
HELD_OUT_FRACTION = 0.30   # share of gazetteer entries never used in train
P_HELD_EVAL = 0.35         # chance that an entity slot in dev/test is held out
P_NO_ENTITY = 0.15         # share of sentences without entities
P_SURNAME = 0.65           # chance that a PER slot has a surname
MIN_LEN, MAX_LEN = 5, 30   # tokens per sentence
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")

# Slot name -> entity type.  PER = first name + optional surname,
# FIRST = first name only, SUR = surname only.
ENTITY_SLOTS = {
    "PER": "PER", "FIRST": "PER", "SUR": "PER",
    "CITY": "LOC", "COUNTRY": "LOC", "REGION": "LOC",
    "COMPANY": "ORG", "UNI": "ORG", "CLUB": "ORG",
}
# Gazetteer entries: tokens separated by spaces; an optional "prefix|" holds
# tokens that belong to the sentence but not to the entity ("the|Netherlands").


def _l(text):
    """Split a ';'-separated list, stripping whitespace."""
    return [x.strip() for x in text.split(";") if x.strip()]


# ----------------------------------------------------------------------------
# Names shared by all languages (international people, places, companies).
# ----------------------------------------------------------------------------
SHARED = {
    "first": _l("Maria; Anna; David; Daniel; Laura; Sofia; Martin; Elena; Adam; Nina"),
    "sur": _l("Rossi; Novak; Silva; Kowalski; Nguyen; Kim; Nakamura; Petrov; Yilmaz; Haddad"),
    "CITY": _l("Buenos Aires; Los Angeles; San Francisco; Rio de Janeiro; Sydney; Chicago;"
               "Toronto; Dubai; Nairobi; Boston; Melbourne; Oslo; Helsinki; Lagos; Mumbai; Shanghai"),
    "COUNTRY": [],
    "REGION": [],
    "COMPANY": _l("Google; Microsoft; Apple; Amazon; Toyota; Samsung; IBM; Nestlé; Unilever; Shell;"
                  "Nokia; Spotify; Netflix; Goldman Sachs; General Motors; Coca-Cola; Volvo; IKEA;"
                  "Sony; Huawei"),
    "UNI": [],
    "CLUB": _l("Real Madrid; FC Barcelona; Benfica; Galatasaray; FC Porto"),
}

# ----------------------------------------------------------------------------
# Per-language gazetteers, filler words and templates.
# ----------------------------------------------------------------------------
LANG_DATA = {}

LANG_DATA["en"] = {
    "first": _l("James; Emily; Oliver; Charlotte; William; Olivia; Henry; Grace; George; Amelia;"
                "Jack; Sophie; Thomas; Emma; Harry; Lucy; Michael; Hannah; Samuel; Chloe; Benjamin;"
                "Jessica; Edward; Rachel; Matthew; Katherine; Andrew; Megan; Joseph; Alice; Mary Ann"),
    "sur": _l("Smith; Johnson; Brown; Taylor; Wilson; Davies; Evans; Thompson; Walker; Robinson;"
              "Wright; Harris; Clarke; Hughes; Edwards; Green; Hall; Wood; Turner; Baker; Cooper;"
              "Morgan; Bennett; Collins; Mitchell; O'Brien; Campbell; Stewart; Murray; Fletcher;"
              "Bonham Carter"),
    "CITY": _l("London; Manchester; Birmingham; Liverpool; Leeds; Glasgow; Edinburgh; Cardiff;"
               "Bristol; Dublin; Belfast; Oxford; Cambridge; New York; Seattle; Denver; Atlanta;"
               "Houston; Philadelphia; Washington; Vancouver; Montreal; Auckland; Wellington;"
               "Brighton; Sheffield; Nottingham; Las Vegas; New Orleans; Salt Lake City; Hong Kong;"
               "Cape Town; Kansas City"),
    "COUNTRY": _l("England; Scotland; Wales; Ireland; Canada; Australia; India; Germany; France;"
                  "Spain; Italy; Japan; China; Brazil; Mexico; Kenya; Nigeria; Egypt; Norway; Sweden;"
                  "Poland; Portugal; Argentina; South Africa; New Zealand; Greece;"
                  "the|United States; the|United Kingdom; the|Netherlands; the|Philippines"),
    "REGION": _l("Yorkshire; Cornwall; Texas; California; Florida; Ontario; Queensland; New England;"
                 "Kent; Devon; Bavaria; Tuscany; Catalonia; the|Scottish Highlands; the|Lake District"),
    "COMPANY": _l("Barclays; HSBC; Rolls-Royce; BP; Vodafone; Tesco; Boeing; Ford; Intel; Oracle;"
                  "Pfizer; General Electric; British Airways; Marks & Spencer; Morgan Stanley; Walmart;"
                  "Starbucks; Tata Steel; Jaguar Land Rover; Reuters; Lloyds Bank; Dell; Cisco"),
    "UNI": _l("the|University of Oxford; the|University of Cambridge; Harvard University;"
              "Stanford University; Imperial College London; the|University of Edinburgh;"
              "Yale University; Princeton University; King's College London;"
              "the|University of Toronto; the|University of Manchester; MIT; Columbia University;"
              "Trinity College Dublin"),
    "CLUB": _l("Arsenal; Chelsea; Liverpool FC; Manchester City; Tottenham Hotspur; Everton;"
               "Leeds United; Celtic; Rangers; Aston Villa; Newcastle United; West Ham United;"
               "Wolverhampton Wanderers; Crystal Palace; Nottingham Forest; LA Galaxy; Inter Miami"),
    "JOB": _l("engineer; teacher; journalist; nurse; lawyer; architect; doctor; accountant; designer;"
              "photographer; software developer; economist; translator; pharmacist; electrician"),
    "DAY": _l("Monday; Tuesday; Wednesday; Thursday; Friday; Saturday; Sunday"),
    "MONTH": _l("January; February; March; April; May; June; July; August; September; October;"
                "November; December"),
    "templates": [
        "{PER} was born in {CITY} in {YEAR} .",
        "{PER} , a {JOB} from {CITY} , joined {COMPANY} in {MONTH} {YEAR} .",
        "The board of {COMPANY} met in {CITY} on {DAY} .",
        "{COMPANY} announced that it will open a new office in {CITY} next year .",
        "{PER} studied economics at {UNI} before moving to {COUNTRY} .",
        "{CLUB} beat {CLUB} {SCORE} on {DAY} night .",
        "According to {PER} , the trip from {CITY} to {CITY} takes about {NUM} minutes .",
        "Professor {SUR} has taught at {UNI} since {YEAR} .",
        "{PER} moved to {REGION} with their family after the war .",
        "Shares of {COMPANY} fell by {NUM} percent on {DAY} .",
        "The government of {COUNTRY} signed a trade agreement with {COUNTRY} in {YEAR} .",
        "{PER} scored twice for {CLUB} in the final against {CLUB} .",
        "Thousands of tourists visit {REGION} every summer .",
        "{CITY} is the largest city in {REGION} .",
        "Ms {SUR} told reporters in {CITY} that {COMPANY} would not cut jobs .",
        "After leaving {COMPANY} , {PER} founded a small start-up in {CITY} .",
        "{UNI} and {COMPANY} will build a research centre near {CITY} .",
        "{PER} and {PER} were married in {CITY} last {MONTH} .",
        "The new coach of {CLUB} is {PER} , a former player from {COUNTRY} .",
        "Flights between {CITY} and {CITY} were cancelled because of the storm .",
        "{PER} works as a {JOB} for {COMPANY} in {COUNTRY} .",
        "I met {FIRST} at a conference in {CITY} .",
        "{COMPANY} has bought a stake in {COMPANY} for {NUM} million dollars .",
        "Police in {CITY} are looking for a man who stole a car on {DAY} .",
        "In an interview with a newspaper from {CITY} , {PER} said that {COMPANY} and"
        " {COMPANY} had discussed a merger for months .",
        "{PER} , who grew up in {REGION} , won a scholarship to {UNI} .",
    ],
    "empty": [
        "The meeting was postponed until {DAY} because of the weather .",
        "Prices rose by {NUM} percent in {MONTH} , the highest rate since {YEAR} .",
        "She has worked as a {JOB} for more than {NUM} years .",
        "Nobody expected the results to be so good .",
        "The museum will be closed on {DAY} and will reopen in {MONTH} .",
        "About {NUM} people attended the concert on {DAY} evening .",
        "My brother became a {JOB} in {YEAR} after years of study .",
    ],
}

LANG_DATA["de"] = {
    "first": _l("Lukas; Felix; Lea; Jonas; Mia; Leon; Sophie; Maximilian; Hannah; Paul; Lena; Niklas;"
                "Katharina; Tobias; Julia; Sebastian; Johanna; Florian; Franziska; Moritz; Clara;"
                "Matthias; Sabine; Jürgen; Ursula; Wolfgang; Heike; Stefan; Birgit; Uwe; Greta;"
                "Hans-Peter; Anna Lena"),
    "sur": _l("Müller; Schmidt; Schneider; Fischer; Weber; Meyer; Wagner; Becker; Schulz; Hoffmann;"
              "Koch; Richter; Klein; Wolf; Schröder; Neumann; Schwarz; Zimmermann; Braun; Krüger;"
              "Hartmann; Lange; Werner; Krause; Lehmann; von Arnim; von Bülow"),
    "CITY": _l("Berlin; Hamburg; München; Köln; Frankfurt am Main; Stuttgart; Düsseldorf; Leipzig;"
               "Dresden; Hannover; Nürnberg; Bremen; Bonn; Heidelberg; Freiburg; Wien; Graz;"
               "Salzburg; Innsbruck; Zürich; Basel; Bern; Linz; Rostock; Kiel; Mainz; Regensburg;"
               "Bad Homburg; Sankt Gallen; New York; Hongkong; Tokio; Paris; Rom; Mailand"),
    "COUNTRY": _l("Deutschland; Österreich; Frankreich; Italien; Spanien; Polen; Japan; China;"
                  "Brasilien; Kanada; Schweden; Norwegen; Dänemark; Belgien; Griechenland; Portugal;"
                  "Ungarn; Tschechien; Indien; Mexiko; Argentinien; Ägypten; Marokko; Finnland;"
                  "Irland; Kroatien; Rumänien; Australien; Chile; Kenia; Südafrika; Neuseeland"),
    "REGION": _l("Bayern; Sachsen; Tirol; Thüringen; Brandenburg; Hessen; Schleswig-Holstein;"
                 "Nordrhein-Westfalen; Baden-Württemberg; Niedersachsen; Südtirol; Kärnten;"
                 "Mecklenburg-Vorpommern; Sachsen-Anhalt; Vorarlberg; Graubünden"),
    "COMPANY": _l("Siemens; Bosch; Volkswagen; SAP; Allianz; Lufthansa; Adidas; BASF; Bayer; Henkel;"
                  "Zalando; Commerzbank; Deutsche Telekom; Deutsche Bahn; Deutsche Bank; Porsche; BMW;"
                  "Daimler Truck; Continental; Puma; Thyssenkrupp; Red Bull; Swarovski; Novartis;"
                  "Roche; ABB; Merck; Rheinmetall; Infineon; Beiersdorf"),
    # used after "an der" / "Die": feminine names only
    "UNI": _l("Universität Heidelberg; Universität Wien; TU München;"
              "Humboldt-Universität zu Berlin; Universität Hamburg; Universität zu Köln;"
              "FU Berlin; Universität Leipzig; ETH Zürich; Universität Bonn;"
              "Universität Göttingen; Goethe-Universität Frankfurt; Universität Innsbruck;"
              "RWTH Aachen; TU Dresden"),
    "CLUB": _l("Bayern München; Borussia Dortmund; Schalke 04; Werder Bremen; Hamburger SV;"
               "VfB Stuttgart; Eintracht Frankfurt; 1. FC Köln; Hertha BSC; Rapid Wien;"
               "Austria Wien; FC Basel; RB Leipzig; Union Berlin; SC Freiburg; Bayer Leverkusen; Ajax"),
    "JOB": _l("Ingenieur/Ingenieurin; Lehrer/Lehrerin; Journalist/Journalistin;"
              "Krankenpfleger/Krankenpflegerin; Anwalt/Anwältin; Architekt/Architektin; Arzt/Ärztin;"
              "Buchhalter/Buchhalterin; Designer/Designerin; Fotograf/Fotografin;"
              "Softwareentwickler/Softwareentwicklerin; Ökonom/Ökonomin; Übersetzer/Übersetzerin;"
              "Apotheker/Apothekerin; Elektriker/Elektrikerin"),
    "DAY": _l("Montag; Dienstag; Mittwoch; Donnerstag; Freitag; Samstag; Sonntag"),
    "MONTH": _l("Januar; Februar; März; April; Mai; Juni; Juli; August; September; Oktober;"
                "November; Dezember"),
    "templates": [
        "{PER} wurde {YEAR} in {CITY} geboren .",
        "Der Vorstand von {COMPANY} traf sich am {DAY} in {CITY} .",
        "{PER} studierte Physik an der {UNI} und zog später nach {COUNTRY} .",
        "{COMPANY} will im nächsten Jahr ein neues Werk in {REGION} eröffnen .",
        "{CLUB} gewann am {DAY} mit {SCORE} gegen {CLUB} .",
        "Laut {PER} ist die Lage in {CITY} weiterhin angespannt .",
        "Frau {SUR} arbeitet seit {YEAR} als {JOB_F} bei {COMPANY} .",
        "Herr {SUR} erklärte in {CITY} , dass {COMPANY} keine Stellen abbauen werde .",
        "Die Regierung von {COUNTRY} unterzeichnete {YEAR} ein Abkommen mit {COUNTRY} .",
        "Viele Touristen besuchen jeden Sommer {REGION} .",
        "{PER} erzielte zwei Tore für {CLUB} .",
        "Die Aktie von {COMPANY} fiel am {DAY} um {NUM} Prozent .",
        "Nach dem Abschied von {COMPANY} gründete {PER} ein Start-up in {CITY} .",
        "Die Züge zwischen {CITY} und {CITY} fallen wegen des Sturms aus .",
        "{PER} und {PER} haben im {MONTH} in {CITY} geheiratet .",
        "Der neue Trainer von {CLUB} heißt {PER} und stammt aus {COUNTRY} .",
        "Die {UNI} und {COMPANY} bauen gemeinsam ein Forschungszentrum bei {CITY} .",
        "{CITY} ist die größte Stadt in {REGION} .",
        "Ich habe {FIRST} auf einer Konferenz in {CITY} kennengelernt .",
        "{COMPANY} übernimmt für {NUM} Millionen Euro einen Anteil an {COMPANY} .",
        "Die Polizei in {CITY} sucht einen Mann , der am {DAY} ein Auto gestohlen hat .",
        "Professorin {SUR} lehrt seit {YEAR} an der {UNI} .",
        "In einem Interview mit einer Zeitung aus {CITY} sagte {PER} , dass {COMPANY} und"
        " {COMPANY} seit Monaten über eine Fusion verhandeln .",
        "{PER} wuchs in {REGION} auf und erhielt später ein Stipendium an der {UNI} .",
    ],
    "empty": [
        "Die Sitzung wurde wegen des Wetters auf {DAY} verschoben .",
        "Die Preise stiegen im {MONTH} um {NUM} Prozent , so stark wie seit {YEAR} nicht mehr .",
        "Sie arbeitet seit mehr als {NUM} Jahren als {JOB_F} .",
        "Niemand hatte mit so guten Ergebnissen gerechnet .",
        "Das Museum bleibt am {DAY} geschlossen und öffnet im {MONTH} wieder .",
        "Etwa {NUM} Menschen besuchten am {DAY} das Konzert im Park .",
        "Mein Bruder wurde {YEAR} nach langem Studium {JOB_M} .",
    ],
}

LANG_DATA["fr"] = {
    "first": _l("Jean; Marie; Pierre; Camille; Louis; Chloé; Antoine; Manon; Nicolas; Juliette;"
                "François; Inès; Julien; Léa; Mathieu; Élodie; Guillaume; Céline; Olivier; Sandrine;"
                "Thibault; Margaux; Hugo; Amélie; Baptiste; Isabelle; Étienne; Océane; Rémi;"
                "Nathalie; Jean-Luc; Anne-Sophie"),
    "sur": _l("Bernard; Dubois; Thomas; Robert; Richard; Petit; Durand; Leroy; Moreau; Simon;"
              "Laurent; Lefèvre; Michel; Fournier; Girard; Bonnet; Dupont; Lambert; Fontaine;"
              "Rousseau; Vincent; Mercier; Blanc; Guérin; Chevalier; Faure; Le Goff; de Villiers"),
    "CITY": _l("Paris; Lyon; Marseille; Toulouse; Nice; Nantes; Strasbourg; Montpellier; Bordeaux;"
               "Lille; Rennes; Reims; Grenoble; Dijon; Angers; Brest; Tours; Limoges;"
               "Clermont-Ferrand; Aix-en-Provence; Saint-Étienne; La Rochelle; Genève; Lausanne;"
               "Bruxelles; Liège; Namur; Montréal; Dakar; Abidjan; Casablanca; Tunis; Londres;"
               "Berlin; New York; Hong Kong"),
    # French countries and regions carry their article (kept outside the entity)
    "COUNTRY": _l("la|France; l'|Allemagne; l'|Espagne; l'|Italie; la|Belgique; le|Canada;"
                  "le|Japon; le|Brésil; le|Portugal; la|Suisse; le|Maroc; l'|Argentine; la|Chine;"
                  "le|Mexique; les|Pays-Bas; les|États-Unis; la|Grèce; la|Pologne; la|Suède;"
                  "l'|Autriche; la|Norvège; le|Sénégal; l'|Inde; la|Tunisie; l'|Irlande;"
                  "le|Danemark; la|Roumanie; le|Chili; le|Pérou; la|Colombie"),
    "REGION": _l("la|Bretagne; la|Normandie; la|Provence; l'|Alsace; la|Bourgogne; la|Corse;"
                 "l'|Occitanie; la|Savoie; la|Wallonie; l'|Auvergne; la|Lorraine; la|Champagne;"
                 "la|Dordogne; l'|Île-de-France; la|Gascogne"),
    "COMPANY": _l("Renault; Airbus; Danone; TotalEnergies; BNP Paribas; Société Générale; Air France;"
                  "Carrefour; L'Oréal; Michelin; Peugeot; Orange; Sanofi; Capgemini; Thales;"
                  "Dassault Aviation; Crédit Agricole; Decathlon; Alstom; Hermès; Chanel; Ubisoft;"
                  "Saint-Gobain; Vinci; Bouygues; Veolia; La Poste"),
    # used after "l'": vowel-initial names only
    "UNI": _l("Université de Lyon; Université Paris-Saclay; Université de Bordeaux;"
              "Université de Strasbourg; Université de Montréal; Université Laval;"
              "Université libre de Bruxelles; Université de Genève; École polytechnique;"
              "École normale supérieure; Institut Pasteur; Université de Lille;"
              "Université Grenoble Alpes; Université catholique de Louvain"),
    # used after "le" / "du": masculine, consonant-initial names only
    "CLUB": _l("Paris Saint-Germain; Stade Rennais; FC Nantes; RC Lens; Stade de Reims; Toulouse FC;"
               "Montpellier HSC; FC Lorient; Stade Toulousain; Stade Brestois;"
               "Racing Club de Strasbourg; FC Metz; Standard de Liège"),
    "JOB": _l("ingénieur/ingénieure; professeur/professeure; journaliste; infirmier/infirmière;"
              "avocat/avocate; architecte; médecin; comptable; graphiste; photographe;"
              "développeur/développeuse; économiste; traducteur/traductrice;"
              "pharmacien/pharmacienne; électricien/électricienne"),
    "DAY": _l("lundi; mardi; mercredi; jeudi; vendredi; samedi; dimanche"),
    "MONTH": _l("janvier; février; mars; avril; mai; juin; juillet; août; septembre; octobre;"
                "novembre; décembre"),
    "templates": [
        "{PER} a vu le jour à {CITY} en {YEAR} .",
        "Le conseil d' administration de {COMPANY} s' est réuni {DAY} à {CITY} .",
        "{PER} a étudié l' économie à l' {UNI} avant de s' installer à {CITY} .",
        "{COMPANY} va ouvrir un nouveau bureau à {CITY} l' année prochaine .",
        "Le {CLUB} a battu le {CLUB} {SCORE} {DAY} soir .",
        "Selon {PER} , la situation à {CITY} reste tendue .",
        "Madame {SUR} travaille comme {JOB_F} chez {COMPANY} depuis {YEAR} .",
        "Monsieur {SUR} a déclaré à {CITY} que {COMPANY} ne supprimerait pas d' emplois .",
        "Le gouvernement a signé un accord commercial entre {COUNTRY} et {COUNTRY} en {YEAR} .",
        "Des milliers de touristes visitent {REGION} chaque été .",
        "{PER} a marqué deux buts pour le {CLUB} .",
        "L' action de {COMPANY} a chuté de {NUM} pour cent {DAY} .",
        "Après avoir quitté {COMPANY} , {PER} a fondé une jeune entreprise à {CITY} .",
        "Les trains entre {CITY} et {CITY} ont été annulés à cause de la tempête .",
        "{PER} et {PER} se sont mariés à {CITY} en {MONTH} dernier .",
        "Le nouvel entraîneur du {CLUB} s' appelle {PER} .",
        "L' {UNI} et {COMPANY} vont construire un centre de recherche près de {CITY} .",
        "{CITY} est la plus grande ville de {REGION} .",
        "J' ai rencontré {FIRST} lors d' une conférence à {CITY} .",
        "{COMPANY} a acquis une participation dans {COMPANY} pour {NUM} millions d' euros .",
        "La police de {CITY} recherche un homme qui a volé une voiture {DAY} .",
        "Le professeur {SUR} enseigne à l' {UNI} depuis {YEAR} .",
        "Les exportations vers {COUNTRY} ont augmenté de {NUM} pour cent en {YEAR} .",
        "Dans un entretien accordé à un journal de {CITY} , {PER} a affirmé que {COMPANY} et"
        " {COMPANY} discutaient d' une fusion depuis des mois .",
        "{PER} a grandi dans une petite ville près de {CITY} et travaille aujourd'hui pour"
        " {COMPANY} .",
    ],
    "empty": [
        "La réunion a été reportée à {DAY} à cause du mauvais temps .",
        "Les prix ont augmenté de {NUM} pour cent en {MONTH} , un record depuis {YEAR} .",
        "Elle travaille comme {JOB_F} depuis plus de {NUM} ans .",
        "Personne ne s' attendait à de si bons résultats .",
        "Le musée sera fermé {DAY} et rouvrira en {MONTH} .",
        "Environ {NUM} personnes ont assisté au concert {DAY} soir .",
        "Mon frère est devenu {JOB_M} en {YEAR} après de longues études .",
    ],
}

LANG_DATA["es"] = {
    "first": _l("Alejandro; Lucía; Javier; Carmen; Pablo; Marta; Diego; Isabel; Sergio; Paula;"
                "Carlos; Miguel; Sara; Antonio; Cristina; Andrés; Beatriz; Fernando; Rocío; Jorge;"
                "Pilar; Raúl; Natalia; Gonzalo; Alba; Ignacio; Valentina; Mateo; Ximena;"
                "José Luis; María José; Juan Carlos"),
    "sur": _l("García; Fernández; González; Rodríguez; López; Martínez; Sánchez; Pérez; Gómez;"
              "Martín; Jiménez; Ruiz; Hernández; Díaz; Moreno; Muñoz; Álvarez; Romero; Navarro;"
              "Torres; Domínguez; Vázquez; Ramos; Castillo; Ortega; Iglesias; Herrera; Vargas;"
              "Morales; Delgado; Peña; García Márquez; Ruiz Zafón"),
    "CITY": _l("Madrid; Barcelona; Valencia; Sevilla; Zaragoza; Málaga; Bilbao; Granada; Salamanca;"
               "Córdoba; Alicante; Valladolid; Palma de Mallorca; Santander; Pamplona;"
               "San Sebastián; Toledo; Cádiz; Santiago de Compostela; Las Palmas;"
               "Ciudad de México; Bogotá; Lima; Montevideo; Quito; Caracas; La Habana; Medellín;"
               "Guadalajara; Nueva York; Londres; París"),
    "COUNTRY": _l("España; México; Argentina; Colombia; Chile; Perú; Venezuela; Uruguay; Paraguay;"
                  "Bolivia; Ecuador; Cuba; Francia; Alemania; Italia; Portugal; Marruecos; Brasil;"
                  "Japón; China; Canadá; Estados Unidos; Reino Unido; Suecia; Noruega; Grecia;"
                  "Polonia; Irlanda; Egipto; Costa Rica; Países Bajos; Nueva Zelanda"),
    "REGION": _l("Cataluña; Andalucía; Galicia; Castilla y León; Aragón; Asturias; Navarra;"
                 "Extremadura; Cantabria; Castilla-La Mancha; Islas Canarias; Islas Baleares;"
                 "Yucatán; Jalisco; Mendoza; Antioquia"),
    "COMPANY": _l("Telefónica; Inditex; Zara; Banco Santander; BBVA; Iberia; Repsol; Mercadona;"
                  "Iberdrola; Mapfre; Seat; CaixaBank; El Corte Inglés; Ferrovial; Endesa; Naturgy;"
                  "Grifols; Pemex; Cemex; Bimbo; Avianca; Movistar; Mango; Acciona; Prosegur"),
    # used after "la": "Universidad ..." names only
    "UNI": _l("Universidad de Salamanca; Universidad Complutense de Madrid; Universidad de Sevilla;"
              "Universidad de Granada; Universidad Autónoma de Madrid; Universidad de Buenos Aires;"
              "Universidad de Barcelona; Universidad Politécnica de Valencia; Universidad de Chile;"
              "Universidad Nacional de Colombia; Universidad de Navarra; Universidad de Zaragoza;"
              "Universidad Carlos III"),
    # used after "el" / "del" / "al": masculine names only
    "CLUB": _l("Atlético de Madrid; Sevilla FC; Valencia CF; Athletic Club; Villarreal; Real Betis;"
               "Celta de Vigo; Boca Juniors; River Plate; Deportivo La Coruña; Espanyol; Osasuna;"
               "Club América; Peñarol"),
    "JOB": _l("ingeniero/ingeniera; profesor/profesora; periodista; enfermero/enfermera;"
              "abogado/abogada; arquitecto/arquitecta; médico/médica; contable;"
              "diseñador/diseñadora; fotógrafo/fotógrafa; programador/programadora; economista;"
              "traductor/traductora; farmacéutico/farmacéutica; electricista"),
    "DAY": _l("lunes; martes; miércoles; jueves; viernes; sábado; domingo"),
    "MONTH": _l("enero; febrero; marzo; abril; mayo; junio; julio; agosto; septiembre; octubre;"
                "noviembre; diciembre"),
    "templates": [
        "{PER} nació en {CITY} en {YEAR} .",
        "La junta directiva de {COMPANY} se reunió el {DAY} en {CITY} .",
        "{PER} estudió economía en la {UNI} antes de mudarse a {COUNTRY} .",
        "{COMPANY} abrirá una nueva oficina en {CITY} el próximo año .",
        "El {CLUB} venció al {CLUB} por {SCORE} el {DAY} .",
        "Según {PER} , la situación en {CITY} sigue siendo tensa .",
        "La señora {SUR} trabaja como {JOB_F} en {COMPANY} desde {YEAR} .",
        "El señor {SUR} declaró en {CITY} que {COMPANY} no recortará empleos .",
        "El gobierno de {COUNTRY} firmó un acuerdo comercial con {COUNTRY} en {YEAR} .",
        "Miles de turistas visitan {REGION} cada verano .",
        "{PER} marcó dos goles para el {CLUB} .",
        "Las acciones de {COMPANY} cayeron un {NUM} por ciento el {DAY} .",
        "Después de dejar {COMPANY} , {PER} fundó una pequeña empresa en {CITY} .",
        "Los vuelos entre {CITY} y {CITY} fueron cancelados por la tormenta .",
        "{PER} y {PER} se casaron en {CITY} el pasado mes de {MONTH} .",
        "El nuevo entrenador del {CLUB} es {PER} , un exjugador de {COUNTRY} .",
        "La {UNI} y {COMPANY} construirán un centro de investigación cerca de {CITY} .",
        "{CITY} es la ciudad más grande de {REGION} .",
        "Conocí a {FIRST} en una conferencia en {CITY} .",
        "{COMPANY} compró una participación en {COMPANY} por {NUM} millones de euros .",
        "La policía de {CITY} busca a un hombre que robó un coche el {DAY} .",
        "La profesora {SUR} enseña en la {UNI} desde {YEAR} .",
        "En una entrevista con un periódico de {CITY} , {PER} afirmó que {COMPANY} y"
        " {COMPANY} llevaban meses negociando una fusión .",
        "{PER} creció en {REGION} y más tarde obtuvo una beca de la {UNI} .",
    ],
    "empty": [
        "La reunión se aplazó hasta el {DAY} por el mal tiempo .",
        "Los precios subieron un {NUM} por ciento en {MONTH} , la cifra más alta desde {YEAR} .",
        "Trabaja como {JOB} desde hace más de {NUM} años .",
        "Nadie esperaba unos resultados tan buenos .",
        "El museo estará cerrado el {DAY} y volverá a abrir en {MONTH} .",
        "Unas {NUM} personas asistieron al concierto del {DAY} por la noche .",
        "Mi hermano se hizo {JOB_M} en {YEAR} tras años de estudio .",
    ],
}

LANG_DATA["nl"] = {
    "first": _l("Jan; Sanne; Pieter; Anouk; Daan; Fleur; Bram; Lotte; Sem; Eva; Thijs; Femke; Joost;"
                "Ilse; Ruben; Marieke; Wouter; Esther; Jeroen; Lieke; Koen; Annelies; Maarten; Noor;"
                "Stijn; Floor; Willem; Saskia; Bart; Mirjam; Hendrik; Els"),
    "sur": _l("de Jong; Jansen; de Vries; van Dijk; Bakker; Visser; Smit; Meijer; de Boer; Mulder;"
              "de Groot; Bos; Vos; Peters; Hendriks; van Leeuwen; Dekker; Brouwer; de Wit;"
              "Dijkstra; Smits; de Graaf; Kok; Jacobs; Vermeulen; Peeters; Maes; Janssens;"
              "Willems; Claes; Wouters; van Damme; Verhoeven"),
    "CITY": _l("Amsterdam; Rotterdam; Den Haag; Utrecht; Eindhoven; Groningen; Tilburg; Almere;"
               "Breda; Nijmegen; Maastricht; Leiden; Delft; Haarlem; Arnhem; Zwolle; Leeuwarden;"
               "Enschede; 's-Hertogenbosch; Antwerpen; Gent; Brugge; Leuven; Brussel; Mechelen;"
               "Hasselt; Paramaribo; Willemstad; Keulen; Parijs; Londen; New York; Hong Kong"),
    "COUNTRY": _l("Nederland; België; Duitsland; Frankrijk; Spanje; Italië; Portugal; Polen; Zweden;"
                  "Noorwegen; Denemarken; Oostenrijk; Zwitserland; Griekenland; Turkije; Marokko;"
                  "Suriname; Indonesië; Japan; China; Brazilië; Canada; Australië; Zuid-Afrika;"
                  "Egypte; Ierland; Hongarije; Mexico; de|Verenigde Staten;"
                  "het|Verenigd Koninkrijk"),
    "REGION": _l("Limburg; Friesland; Zeeland; Brabant; Noord-Holland; Zuid-Holland; Gelderland;"
                 "Drenthe; Overijssel; Vlaanderen; Wallonië; Twente; Noord-Brabant; Oost-Vlaanderen;"
                 "de|Veluwe; de|Achterhoek"),
    "COMPANY": _l("Philips; Heineken; ASML; KLM; ING; Rabobank; ABN AMRO; Albert Heijn;"
                  "Ahold Delhaize; Booking.com; TomTom; Randstad; AkzoNobel; DSM; Jumbo; Bol.com;"
                  "Coolblue; Proximus; KBC; Delhaize; Colruyt; Tata Steel; Adyen"),
    # used after "aan de" / "De"
    "UNI": _l("Universiteit van Amsterdam; Universiteit Utrecht; Rijksuniversiteit Groningen;"
              "Universiteit Leiden; Technische Universiteit Delft; Erasmus Universiteit Rotterdam;"
              "Vrije Universiteit Amsterdam; Radboud Universiteit; KU Leuven; Universiteit Gent;"
              "Universiteit Maastricht; Universiteit Twente; Wageningen University;"
              "Vrije Universiteit Brussel"),
    "CLUB": _l("Ajax; PSV; Feyenoord; AZ; FC Twente; FC Utrecht; Vitesse; sc Heerenveen;"
               "FC Groningen; Sparta Rotterdam; Club Brugge; RSC Anderlecht; KAA Gent;"
               "Standard Luik; Go Ahead Eagles"),
    "JOB": _l("ingenieur; leraar/lerares; journalist; verpleegkundige; advocaat; architect; arts;"
              "boekhouder; ontwerper; fotograaf; programmeur; econoom; vertaler; apotheker;"
              "elektricien"),
    "DAY": _l("maandag; dinsdag; woensdag; donderdag; vrijdag; zaterdag; zondag"),
    "MONTH": _l("januari; februari; maart; april; mei; juni; juli; augustus; september; oktober;"
                "november; december"),
    "templates": [
        "{PER} werd in {YEAR} geboren in {CITY} .",
        "De raad van bestuur van {COMPANY} kwam op {DAY} bijeen in {CITY} .",
        "{PER} studeerde economie aan de {UNI} en verhuisde later naar {COUNTRY} .",
        "{COMPANY} opent volgend jaar een nieuw kantoor in {CITY} .",
        "{CLUB} won op {DAY} met {SCORE} van {CLUB} .",
        "Volgens {PER} blijft de situatie in {CITY} gespannen .",
        "Mevrouw {SUR} werkt sinds {YEAR} als {JOB_F} bij {COMPANY} .",
        "Meneer {SUR} zei in {CITY} dat {COMPANY} geen banen zal schrappen .",
        "De regering van {COUNTRY} sloot in {YEAR} een handelsakkoord met {COUNTRY} .",
        "Elke zomer bezoeken duizenden toeristen {REGION} .",
        "{PER} scoorde twee keer voor {CLUB} .",
        "Het aandeel {COMPANY} daalde op {DAY} met {NUM} procent .",
        "Na een loopbaan van {NUM} jaar bij {COMPANY} richtte {PER} een start-up op in {CITY} .",
        "De treinen tussen {CITY} en {CITY} rijden niet vanwege de storm .",
        "{PER} en {PER} zijn in {MONTH} in {CITY} getrouwd .",
        "De nieuwe trainer van {CLUB} is {PER} , een oud-speler uit {COUNTRY} .",
        "De {UNI} en {COMPANY} bouwen samen een onderzoekscentrum bij {CITY} .",
        "{CITY} is de grootste stad van {REGION} .",
        "Ik heb {FIRST} ontmoet op een congres in {CITY} .",
        "{COMPANY} koopt voor {NUM} miljoen euro een belang in {COMPANY} .",
        "De politie in {CITY} zoekt een man die op {DAY} een auto heeft gestolen .",
        "Professor {SUR} doceert sinds {YEAR} aan de {UNI} .",
        "In een interview met een krant uit {CITY} zei {PER} dat {COMPANY} en {COMPANY} al"
        " maanden over een fusie praten .",
        "{PER} groeide op in {REGION} en kreeg later een beurs van de {UNI} .",
    ],
    "empty": [
        "De vergadering is vanwege het weer uitgesteld tot {DAY} .",
        "De prijzen stegen in {MONTH} met {NUM} procent , het hoogste niveau sinds {YEAR} .",
        "Ze werkt al meer dan {NUM} jaar als {JOB_F} .",
        "Niemand had zulke goede resultaten verwacht .",
        "Het museum is op {DAY} gesloten en gaat in {MONTH} weer open .",
        "Ongeveer {NUM} mensen bezochten op {DAY} het concert in het park .",
        "Mijn broer werd in {YEAR} {JOB_M} na een lange studie .",
    ],
}

SCORE_SEP = {"en": "-", "de": ":", "fr": "à", "es": "a", "nl": "-"}
FR_VOWELS = "aeiouyàâäéèêëîïôöûüœ"


# ----------------------------------------------------------------------------
# Gazetteer pools with held-out entries.
# ----------------------------------------------------------------------------
def parse_entry(entry):
    """'the|United States' -> (['the'], ['United', 'States'])."""
    if "|" in entry:
        prefix, name = entry.split("|", 1)
        return prefix.split(), name.split()
    return [], entry.split()


def is_held_out(key):
    """Deterministic, language-independent held-out decision for an entry.

    The decision depends only on the entity text, so an international name
    shared by several languages is held out everywhere or nowhere.
    """
    digest = hashlib.md5(("xtremedistil-demo:" + key).encode("utf-8")).hexdigest()
    return int(digest, 16) % 1000 < HELD_OUT_FRACTION * 1000


def build_pools(lang):
    """Return {kind: {"seen": [...], "held": [...]}} with parsed entries."""
    data = LANG_DATA[lang]
    pools = {}
    for kind in ["first", "sur", "CITY", "COUNTRY", "REGION", "COMPANY", "UNI", "CLUB"]:
        entries, keys = [], []
        for raw in data[kind] + SHARED[kind]:
            prefix, name = parse_entry(raw)
            key = " ".join(name)
            if key in keys:
                continue
            keys.append(key)
            entries.append((prefix, name, key))
        seen = [e for e in entries if not is_held_out(e[2])]
        held = [e for e in entries if is_held_out(e[2])]
        assert seen and held, (lang, kind, len(seen), len(held))
        pools[kind] = {"seen": seen, "held": held}
    return pools


POOLS = {lang: build_pools(lang) for lang in LANGS}


def draw(rng, pool, held):
    if held:
        return rng.choice(pool["held"])
    return rng.choice(pool["seen"])


def choose_held(rng, mode):
    """Held-out or not for one entity slot: never in train, sometimes in dev/test."""
    if mode == "train":
        return False
    if mode == "eval":
        return rng.random() < P_HELD_EVAL
    return None  # transfer: draw from the whole gazetteer


_DECKS = {}


def draw_entry(rng, pool, held, mode):
    """Train and transfer deal entries from a shuffled deck, so that every
    entry of the pool is used before any is repeated (train: the seen entries,
    transfer: the whole gazetteer); dev/test draw independently."""
    if mode == "eval":
        return draw(rng, pool, held)
    deck = _DECKS.setdefault((mode, id(pool)), [])
    if not deck:
        deck += pool["seen"] if mode == "train" else pool["seen"] + pool["held"]
        rng.shuffle(deck)
    return deck.pop()


def fill_entity(rng, lang, slot, mode):
    """Return (prefix_tokens, entity_tokens, component_keys, held_flag)."""
    pools = POOLS[lang]
    held = choose_held(rng, mode)
    if slot in ("PER", "FIRST", "SUR"):
        parts, keys = [], []
        if slot in ("PER", "FIRST"):
            _, first, key = draw_entry(rng, pools["first"], held, mode)
            parts += first
            keys.append(key)
        if slot == "SUR" or (slot == "PER" and rng.random() < P_SURNAME):
            while True:
                _, sur, key = draw_entry(rng, pools["sur"], held, mode)
                if len(parts) + len(sur) <= 3:
                    break
            parts += sur
            keys.append(key)
        return [], parts, keys, held
    prefix, name, key = draw_entry(rng, pools[slot], held, mode)
    return list(prefix), list(name), [key], held


def fill_plain(rng, lang, slot):
    data = LANG_DATA[lang]
    if slot == "YEAR":
        return [str(rng.randint(1950, 2023))]
    if slot == "NUM":
        return [str(rng.randint(2, 60))]
    if slot == "SCORE":  # a win: "3 - 1", "3 : 1", "3 à 1", ...
        winner = rng.randint(1, 5)
        return [str(winner), SCORE_SEP[lang], str(rng.randint(0, winner - 1))]
    if slot in ("DAY", "MONTH"):
        return rng.choice(data[slot]).split()
    if slot in ("JOB", "JOB_M", "JOB_F"):
        forms = rng.choice(data["JOB"]).split("/")
        if slot == "JOB_M":
            word = forms[0]
        elif slot == "JOB_F":
            word = forms[-1]
        else:
            word = rng.choice(forms)
        return word.split()
    raise ValueError("unknown slot %r" % slot)


def adjust_previous(lang, tokens, next_token):
    """Local grammar fixes at a slot boundary (a/an, French elision, Spanish y/e)."""
    if not tokens:
        return
    prev, nxt = tokens[-1], next_token.lower()
    if lang == "en" and prev == "a" and nxt[0] in "aeiou":
        tokens[-1] = "an"
    elif lang == "fr" and prev.lower() in ("de", "que", "le", "la") and nxt[0] in FR_VOWELS:
        tokens[-1] = prev[:-1] + "'"
    elif lang == "es" and prev == "y" and (nxt.startswith("i") or nxt.startswith("hi")) \
            and not nxt.startswith("hie"):
        tokens[-1] = "e"


def make_sentence(rng, lang, mode):
    """One sentence: (tokens, plain tags, [(component_keys, held, entity_text)])."""
    data = LANG_DATA[lang]
    no_entity = rng.random() < P_NO_ENTITY
    template = rng.choice(data["empty"] if no_entity else data["templates"])
    tokens, tags, fills, used_keys = [], [], [], []
    for piece in template.split():
        if not (piece.startswith("{") and piece.endswith("}")):
            tokens.append(piece)
            tags.append("O")
            continue
        slot = piece[1:-1]
        if slot in ENTITY_SLOTS:
            for _ in range(50):  # no entry twice in one sentence
                prefix, name, keys, held = fill_entity(rng, lang, slot, mode)
                if not set(keys) & set(used_keys):
                    break
            used_keys += keys
            adjust_previous(lang, tokens, (prefix + name)[0])
            tokens += prefix
            tags += ["O"] * len(prefix)
            etype = ENTITY_SLOTS[slot]
            tokens += name
            tags += ["B-" + etype] + ["I-" + etype] * (len(name) - 1)
            fills.append((keys, held, " ".join(name)))
        else:
            words = fill_plain(rng, lang, slot)
            adjust_previous(lang, tokens, words[0])
            tokens += words
            tags += ["O"] * len(words)
    tokens[0] = tokens[0][0].upper() + tokens[0][1:]
    return tokens, tags, fills


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------
def check_sentence(tokens, tags):
    assert len(tokens) == len(tags), (tokens, tags)
    assert MIN_LEN <= len(tokens) <= MAX_LEN, tokens
    prev = "O"
    for tok, tag in zip(tokens, tags):
        assert tok and not any(c.isspace() for c in tok), repr(tok)
        assert tag in LABELS, tag
        if tag.startswith("I-"):
            assert prev[2:] == tag[2:] and prev != "O", (tokens, tags)
        prev = tag


def entity_spans(tokens, tags):
    spans, cur = [], None
    for tok, tag in zip(tokens, tags):
        if tag.startswith("B-"):
            cur = [tag[2:], [tok]]
            spans.append(cur)
        elif tag.startswith("I-"):
            cur[1].append(tok)
        else:
            cur = None
    return [(t, " ".join(w)) for t, w in spans]


# ----------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------
def generate():
    used_text = set()   # no sentence appears twice anywhere
    splits = {name: [] for name in SPLIT_SIZES}   # name -> [(lang, tokens, tags)]
    transfer = []
    keys_by_mode = {"train": set(), "eval_held": set(), "transfer": set()}

    def produce(rng, lang, mode, n):
        out = []
        while len(out) < n:
            for _ in range(1000):
                tokens, tags, fills = make_sentence(rng, lang, mode)
                text = " ".join(tokens)
                if MIN_LEN <= len(tokens) <= MAX_LEN and text not in used_text:
                    break
            else:
                raise RuntimeError("cannot generate a new sentence for %s/%s" % (lang, mode))
            check_sentence(tokens, tags)
            used_text.add(text)
            for keys, held, _ in fills:
                if mode == "train":
                    keys_by_mode["train"].update(keys)
                elif mode == "eval" and held:
                    keys_by_mode["eval_held"].update(keys)
                elif mode == "transfer":
                    keys_by_mode["transfer"].update(keys)
            out.append((lang, tokens, tags, [held for _, held, _ in fills]))
        return out

    for lang in LANGS:
        for split, n in SPLIT_SIZES.items():
            rng = random.Random("%d:%s:%s" % (SEED, lang, split))
            splits[split] += produce(rng, lang, "train" if split == "train" else "eval", n)
        rng = random.Random("%d:%s:transfer" % (SEED, lang))
        transfer += produce(rng, lang, "transfer", TRANSFER_PER_LANG)
    random.Random("%d:shuffle-transfer" % SEED).shuffle(transfer)

    # Held-out entries: never in train, always present in the transfer set.
    leaked = keys_by_mode["eval_held"] & keys_by_mode["train"]
    assert not leaked, "held-out entries in train: %s" % sorted(leaked)
    missing = keys_by_mode["eval_held"] - keys_by_mode["transfer"]
    assert not missing, "held-out entries missing from transfer: %s" % sorted(missing)
    return splits, transfer


def write(splits, transfer):
    os.makedirs(OUT_DIR, exist_ok=True)
    for split, rows in splits.items():
        with open(os.path.join(OUT_DIR, split + ".tsv"), "w", encoding="utf-8", newline="\n") as f:
            for lang, tokens, tags, _ in rows:
                line_tags = ["%s:%s" % (lang, t) for t in tags]
                assert len(tokens) == len(line_tags)
                f.write(" ".join(tokens) + "\t" + " ".join(line_tags) + "\n")
    with open(os.path.join(OUT_DIR, "labels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(LABELS) + "\n")
    with open(os.path.join(OUT_DIR, "transfer.txt"), "w", encoding="utf-8", newline="\n") as f:
        for _, tokens, _, _ in transfer:
            f.write(" ".join(tokens) + "\n")


def report(splits, transfer):
    train_entities = {s for _, tok, tag, _ in splits["train"] for s in entity_spans(tok, tag)}
    print("written to %s" % OUT_DIR)
    for split, rows in splits.items():
        per_lang = Counter(lang for lang, _, _, _ in rows)
        mentions = [s for _, tok, tag, _ in rows for s in entity_spans(tok, tag)]
        held = [h for _, _, _, flags in rows for h in flags]
        unseen = sum(1 for s in mentions if s not in train_entities)
        types = Counter(t for t, _ in mentions)
        print("%-8s %4d sentences (%s), %d entity mentions (%s), %.0f%% from held-out"
              " entries, %.0f%% unseen in train"
              % (split, len(rows), " ".join("%s=%d" % (l, per_lang[l]) for l in LANGS),
                 len(mentions), " ".join("%s=%d" % kv for kv in sorted(types.items())),
                 100.0 * sum(1 for h in held if h) / max(1, len(held)),
                 100.0 * unseen / max(1, len(mentions))))
    per_lang = Counter(lang for lang, _, _, _ in transfer)
    print("transfer %4d sentences (%s)"
          % (len(transfer), " ".join("%s=%d" % (l, per_lang[l]) for l in LANGS)))


def main():
    splits, transfer = generate()
    write(splits, transfer)
    if "-q" not in sys.argv[1:]:
        report(splits, transfer)


if __name__ == "__main__":
    main()
