DROP TABLE spent_links;
