-- The territory: the communes inside which a vehicle trip needs no approval of
-- its own. A trip whose destination (trip details, or a "Destination :" line in
-- the invitation) lies elsewhere matches the circuits' "outside the territory"
-- condition. Data, not code: each commune by name, INSEE code, postcodes and
-- other names it goes by. The default is the nine communes of Plaine Commune.

CREATE TABLE territory_communes (
    name       text PRIMARY KEY CHECK (btrim(name) <> ''),
    insee_code text UNIQUE CHECK (insee_code ~ '^[0-9][0-9AB][0-9]{3}$'),
    postcodes  text[] NOT NULL DEFAULT '{}',
    aliases    text[] NOT NULL DEFAULT '{}'
);

INSERT INTO territory_communes (name, insee_code, postcodes, aliases) VALUES
    ('Aubervilliers', '93001', '{93300}', '{}'),
    ('Épinay-sur-Seine', '93031', '{93800}', '{}'),
    ('L''Île-Saint-Denis', '93039', '{93450}', '{}'),
    ('La Courneuve', '93027', '{93120}', '{}'),
    ('Pierrefitte-sur-Seine', '93059', '{93380}', '{}'),
    ('Saint-Denis', '93066', '{93200,93210}', '{La Plaine Saint-Denis}'),
    ('Saint-Ouen-sur-Seine', '93070', '{93400}', '{Saint-Ouen}'),
    ('Stains', '93072', '{93240}', '{}'),
    ('Villetaneuse', '93079', '{93430}', '{}');
