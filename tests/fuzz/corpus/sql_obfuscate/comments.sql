-- get user 
--
 select * 
 from users # mysql
 where id = 214325346 /* x */